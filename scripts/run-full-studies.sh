#!/usr/bin/env bash
# Run the shipped studies in full and write their reports to docs/studies/.
#
#   bash scripts/run-full-studies.sh [WORKERS] [STUDY ...]   # default: 2 workers, every study
#
# Studies are stored in out/studies-full.db, so an interrupted run continues where it
# stopped when started again.  Each report records its study's wall time: on 2 cores
# record-ingredients (24 convolutional runs) takes about two hours, the others under half
# an hour each.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-2}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(epochs hidden-units learning-rate regularization regularization-full activations best-mlp
        record-ingredients)
fi
storage="sqlite:///$PWD/out/studies-full.db"
for name in "${names[@]}"; do
    digitlab study run "studies/$name.toml" --workers "$workers" --storage "$storage"
    digitlab study report "studies/$name.toml" --storage "$storage" --out "docs/studies/$name"
done
