# Sourced by scripts/main-job.sh, scripts/run-tests.sh and .ci/run: makes `python` and
# the commands pip installs (digitlab, pytest, ruff) those of a virtual environment.
#
#   source scripts/python-env.sh      # from the checkout's top folder
#
# Inside an active virtual environment, that one is used.  Otherwise the checkout's own
# .venv is made on first use (`python3 -m venv`, which Debian and Ubuntu ship in the
# python3-venv package) and put first on PATH, so a system Python that refuses
# `pip install` (PEP 668: "externally managed") is never installed into.  The
# environment sees the system's packages (--system-site-packages): what is installed
# there already is not downloaded again, and pip puts what is missing into .venv.

_digitlab_python=$(command -v python3 || command -v python) || {
    echo "error: no python3 found; digitlab needs Python 3.11 or newer" >&2
    exit 1
}
if ! "$_digitlab_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: digitlab needs Python 3.11 or newer; $_digitlab_python is $("$_digitlab_python" -V 2>&1)" >&2
    exit 1
fi
if ! "$_digitlab_python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    # A .venv left half-made (venv fails without python3-venv, after making bin/python)
    # has no pip: it is made again.
    if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
        "$_digitlab_python" -m venv --clear --system-site-packages .venv || {
            echo "error: could not make .venv; on Debian or Ubuntu: apt-get install python3-venv" >&2
            exit 1
        }
    fi
    export VIRTUAL_ENV="$PWD/.venv"
    export PATH="$VIRTUAL_ENV/bin:$PATH"
fi
unset _digitlab_python
