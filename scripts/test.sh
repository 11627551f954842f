#!/usr/bin/env bash
# The README's test command.  It installs what the suite needs and runs all of it:
#   1. Debian packages, only those missing (with sudo when not root);
#   2. the project virtualenv .venv, made from requirements/test.lock (scripts/venv.sh), so the
#      suite runs on exactly the locked set and nothing installed on the machine by hand;
#   3. the Docker daemon, when it is installed and not running (root only; the docker tests skip
#      otherwise);
#   4. pytest, in that virtualenv.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k clipping
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# the run store's PostgreSQL backend is tested against a real server (initdb in a temporary folder)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
# the docker-marked tests build the images on a locally made Debian base and bring up
# docker-compose.yml (tests/test_docker.py)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# `python3 -m venv` needs Debian's python3-venv where python3 is Debian's own
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
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

bash scripts/venv.sh requirements/test.lock

# As if activated: the tests start the venv's own gunicorn, celery and hadolint by name.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
unset PYTHONHOME
# Tests that start browsers use Debian's chromedriver; Selenium must not try to download one.
export SE_OFFLINE=true
exec python -m pytest --headless "$@"
