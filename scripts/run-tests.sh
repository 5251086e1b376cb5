#!/usr/bin/env bash
# The tests, on a fresh machine as in CI: install digitlab with its test dependencies
# into the environment scripts/python-env.sh chooses (a .venv of its own unless one is
# active), then run pytest; arguments go to pytest.
#
#   bash scripts/run-tests.sh                        # every test
#   bash scripts/run-tests.sh tests/test_cli.py -q   # some
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh

python -m pip install --quiet -e ".[test]"
python -m pytest "$@"
