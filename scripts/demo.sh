#!/usr/bin/env bash
# The main job on the embedded local stack: deploy examples/chalice-app and use it as a client would.
#   install what is missing → start the stack (moto + registry + data plane: one AWS endpoint) →
#   build the offline Lambda-like base → deploy the example (build, push, create by digest,
#   version, smoke test against the real code, alias, the app's REST API) → invoke the alias →
#   call it over HTTP through the REST API stage's local URL → show its logs → stop the stack.
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
echo "== deploying examples/chalice-app (the smoke test GET /health runs the new version's real code)"
# The base has Python 3.11, so the example is built for 3.11 here (it targets 3.12 on AWS).
lambdaship deploy -C examples/chalice-app --base-image "$BASE" --python 3.11 --package-type image --create-role
echo "== status"
lambdaship status -C examples/chalice-app
echo "== invoking the alias through the stack's Lambda API (lambdaship invoke)"
lambdaship invoke -C examples/chalice-app --path /config
echo "== calling it over HTTP: the REST API stage deploy created, at its local URL"
API=$(lambdaship local status --state-dir "$STATE_DIR" --json | python3 -c '
import json, sys
eps = [e for e in json.load(sys.stdin).get("endpoints") or [] if e["kind"] == "rest" and "chalice-demo" in e["functions"]]
print(eps[0]["url"].rstrip("/") if eps else "")')
if [ -z "$API" ]; then echo "no REST API calls chalice-demo on the stack" >&2; exit 1; fi
echo "REST API stage (local): $API/"
echo "GET /health:";  curl -sS "$API/health"; echo
echo "POST /items:";  curl -sS -X POST -H 'Content-Type: application/json' -d '{"name":"demo"}' "$API/items"; echo
echo "GET /nope:";    curl -sS "$API/nope"; echo
echo "== the stack's HTTP entry points (lambdaship local status)"
lambdaship local status --state-dir "$STATE_DIR"
echo "== logs (START / the function's output / END / REPORT, from the stack's CloudWatch Logs)"
curl -sS -X POST "$AWS_ENDPOINT_URL/_lambdaship/flush" >/dev/null
lambdaship logs -C examples/chalice-app --since 10m
