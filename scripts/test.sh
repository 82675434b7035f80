#!/usr/bin/env bash
# The test command: lint, then the whole suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m ruff check src tests bench examples
python3 -m pytest -q "$@"
