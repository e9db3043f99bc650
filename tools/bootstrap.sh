#!/usr/bin/env sh
# Create .venv with a Python >= 3.12 and install chromaflow (editable) with its test extras into it.
# Finds the interpreter on PATH (python3.12, python3.13, python3), else through pyenv; $PYTHON overrides.
set -eu
cd "$(dirname "$0")/.."

is_ok() { "$1" -c 'import sys; raise SystemExit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    if [ -n "${PYTHON:-}" ]; then
        is_ok "$PYTHON" && { echo "$PYTHON"; return; }
        echo "bootstrap: \$PYTHON=$PYTHON is not a working Python >= 3.12" >&2; exit 1
    fi
    for cand in python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 && is_ok "$cand"; then echo "$cand"; return; fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root)
        for cand in "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.13*/bin/python3.13; do
            if [ -x "$cand" ] && is_ok "$cand"; then echo "$cand"; return; fi
        done
    fi
    echo "bootstrap: no Python >= 3.12 found; install python3.12 (or set PYTHON=/path/to/python3.12)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ] || ! is_ok .venv/bin/python; then
    py=$(find_python)
    echo "bootstrap: creating .venv with $py ($("$py" --version 2>&1))" >&2
    rm -rf .venv
    "$py" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
echo "bootstrap: installing chromaflow and its test extras into .venv" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
echo "bootstrap: installing the authors' reference code the fidelity tests compare against (tools/test-oracles.txt)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r tools/test-oracles.txt
touch .venv/.installed
