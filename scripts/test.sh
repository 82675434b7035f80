#!/usr/bin/env bash
# The test command: lint, import contracts, then the whole suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m ruff check src tests bench examples
lint-imports  # the import contracts in pyproject.toml ([tool.importlinter])
python3 -m pytest -q "$@"
