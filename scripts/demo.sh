#!/usr/bin/env bash
# The main job on the embedded local stack: deploy examples/chalice-app and invoke it.
#   install what is missing → start moto + registry → build the offline Lambda-like base →
#   deploy the example (build, push, create by digest, version, smoke test, alias) →
#   show its status → run the deployed image in a chroot and call GET /health → stop the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
STATE_DIR="${LAMBDASHIP_DEMO_STATE:-$PWD/.lambdaship/demo-stack}"
lambdaship local up --state-dir "$STATE_DIR"
trap 'lambdaship local down --state-dir "$STATE_DIR" >/dev/null' EXIT
eval "$(lambdaship local env --state-dir "$STATE_DIR")"
echo "== building the offline Lambda-like base image (cached after the first run)"
BASE=$(lambdaship local base --registry "$LAMBDASHIP_REGISTRY_URL")
echo "base image: $BASE"
echo "== deploying examples/chalice-app"
# moto runs no function code, so the smoke test is skipped here; the image is exercised below instead.
lambdaship deploy -C examples/chalice-app --base-image "$BASE" --python 3.11 --package-type image \
  --create-role --skip-smoke
echo "== status"
lambdaship status -C examples/chalice-app
echo "== invoking the deployed image (GET /health through the runtime in a chroot)"
lambdaship run "$(lambdaship status -C examples/chalice-app --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployed_image"])')" --request GET /health
