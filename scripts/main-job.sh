#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install digitlab, get MNIST (verified and
# cached), train the book's first network and report its test accuracy, then run the
# studies that ship in studies/ in quick mode and write their reports to out/studies/
# (the full studies' reports are committed in docs/studies/).  digitlab goes into the
# virtual environment scripts/python-env.sh chooses: the active one, else .venv here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh

python -m pip install --quiet -e .
digitlab data fetch
mkdir -p out
digitlab train --preset book-ch1 --out out/book-ch1.npz --history out/book-ch1-history.csv
digitlab evaluate out/book-ch1.npz

storage="sqlite:///$PWD/out/studies.db"
for study in studies/*.toml; do
    name=$(basename "$study" .toml)
    digitlab study run "$study" --quick --storage "$storage"
    digitlab study report "$study" --quick --storage "$storage" --out "out/studies/$name-quick"
done
echo "Study reports: out/studies/README.md"
