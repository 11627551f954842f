#!/usr/bin/env bash
# Make (or reuse and sync) the project virtualenv from a lock file:
#   bash scripts/venv.sh [LOCK]          LOCK: requirements/test.lock (default) or requirements/runtime.lock
# Environment: CLIPVIZ_VENV (default .venv), PYTHON (default python3, >= 3.11).
#
# The virtualenv is reused only while it holds exactly the locked set: same lock file, same
# interpreter, and no package that the lock does not name (scripts/lockcheck.py).  Otherwise it
# is made anew, so nothing installed into it by hand can hide a change of resolution.
# The project itself is installed editable, built in pip's isolated build environment (the
# setuptools that pyproject.toml asks for, not the machine's).
set -euo pipefail
cd "$(dirname "$0")/.."

lock=${1:-requirements/test.lock}
venv=${CLIPVIZ_VENV:-.venv}
py=${PYTHON:-python3}
[ -f "$lock" ] || { echo "venv.sh: no lock file $lock" >&2; exit 2; }

want="$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16) $("$py" -c 'import sys; print(sys.version.split()[0])')"
stamp="$venv/.clipviz-lock"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
   && "$venv/bin/python" scripts/lockcheck.py "$lock"; then
  exit 0
fi

echo "making $venv from $lock"
rm -rf "$venv"
"$py" -m venv "$venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# --require-hashes: every package pinned, every file checked against the lock's hashes
# (this machine's pip configuration names local index folders that may be absent: not news)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "$venv/bin/python" -m pip install -q --require-hashes --no-deps -r "$lock"
quiet "$venv/bin/python" -m pip install -q --no-deps -e .
"$venv/bin/python" scripts/lockcheck.py "$lock"
echo "$want" >"$stamp"
