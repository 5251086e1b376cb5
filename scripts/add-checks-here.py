"""Record this machine's figures for every published results check (docs/**/checks.json).

    python scripts/add-checks-here.py [CHECKS_FILE ...]

A results file's checks hold the exact figures of a few cheap runs, and the test suite
retrains them (tests/test_reproduce.py).  Exact figures belong to one machine's
arithmetic: on a processor whose BLAS kernels or SIMD level differ, the same code and
seed round differently and train to other accuracies.  Run this once on such a machine,
at the commit the files were written at, to keep its figures beside the others; from
then on that machine checks the results too.  See digitlab.train.reproduce.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digitlab.data import load_mnist
from digitlab.errors import DigitlabError
from digitlab.train.reproduce import add_figures_here, arithmetic

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="checks files (default: every one under docs/)"
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="retrain checks that already have this machine's figures too, and replace them",
    )
    args = parser.parse_args()
    files = args.files or sorted({*DOCS.rglob("*.checks.json"), *DOCS.rglob("checks.json")})
    print(f"this machine's arithmetic: {arithmetic()}", flush=True)
    try:
        data = load_mnist()
        for path in files:
            print(f"{path}:", flush=True)
            for line in add_figures_here(path, data, args.replace):
                print(f"  {line}", flush=True)
    except DigitlabError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
