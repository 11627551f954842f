#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages only where missing,
# then the Python package with its test extras) and run the whole suite.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k clipping
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# GNU OpenMP breaks in forked children after a parallel kernel ran (see README).
export NUMBA_THREADING_LAYER=workqueue
exec python3 -m pytest --headless "$@"
