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
# the docker-marked test builds the image on a locally made Debian base (tests/test_docker.py)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# start the Docker daemon if it is installed but not running (needs root)
if command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  (dockerd >/tmp/clipviz-dockerd.log 2>&1 &)
  for _ in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# GNU OpenMP breaks in forked children after a parallel kernel ran (see README).
export NUMBA_THREADING_LAYER=workqueue
exec python3 -m pytest --headless "$@"
