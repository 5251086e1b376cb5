#!/usr/bin/env bash
# Write the committed study reports in docs/studies/ again from the studies they keep
# (each report's journal.log), without running any study: for a report whose wording or
# figures changed since it was written.  Reports that keep no journal yet are skipped and
# named; `bash scripts/run-full-studies.sh 2 NAME` runs such a study again.
#
#   bash scripts/rewrite-study-reports.sh [STUDY ...]   # default: every report
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for folder in docs/studies/*/; do
        names+=("$(basename "$folder")")
    done
fi
for name in "${names[@]}"; do
    journal="docs/studies/$name/journal.log"
    if [ ! -f "$journal" ]; then
        echo "skipped $name: $journal does not exist (run the study again to make it)" >&2
        continue
    fi
    digitlab study report "studies/$name.toml" --storage "$journal" --out "docs/studies/$name"
done
