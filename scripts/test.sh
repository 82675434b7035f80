#!/usr/bin/env bash
# The test command: lint, import contracts, then the whole suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m ruff check src tests bench examples
lint-imports  # the import contracts in pyproject.toml ([tool.importlinter])
# Two workers: most end-to-end tests wait on subprocesses, servers and sandboxes, so two of them
# share this machine's two cores well (24 -> 18.5 min); LAMBDASHIP_TEST_WORKERS=0 runs serially.
python3 -m pytest -q -n "${LAMBDASHIP_TEST_WORKERS:-2}" --dist worksteal "$@"
