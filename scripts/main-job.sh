#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install digitlab, get MNIST (verified and
# cached), train the book's first network, and report its accuracy on the test set.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -e .
digitlab data fetch
mkdir -p models
digitlab train --preset book-ch1 --out models/book-ch1.npz --history models/book-ch1-history.csv
digitlab evaluate models/book-ch1.npz
