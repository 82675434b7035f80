#!/bin/sh
# Peer (a): the seeds' Dockerfile with `buildah build` + `buildah push` (no Docker daemon).
#   buildah.sh STORAGE APP_DIR BASE_REF TARGET_REF
# BUILDAH_DRIVER: storage driver, overlay (default) or vfs (slower: a full copy per layer).
# STORAGE: buildah's storage root (an empty directory = a fresh CI runner; reused = warm layer cache).
# BASE_REF / TARGET_REF: host:port/repo[:tag|@digest] on plain-HTTP registries.
# The host's CA bundle is bind-mounted so `pip install` inside the build can reach PyPI through
# this machine's TLS-intercepting proxy; PIP_BREAK_SYSTEM_PACKAGES lets Debian's pip install
# into the system site-packages like the AWS base image's pip does.
set -eu
storage=$1 app=$2 base=$3 target=$4
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
b() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver "${BUILDAH_DRIVER:-overlay}" "$@"; }
b build --quiet --isolation chroot --layers --pull=missing --tls-verify=false \
  --build-arg "BASE=$base" \
  -v "$ca:/etc/ssl/certs/ca-certificates.crt:ro" \
  -t seed-app:bench -f "$app/Dockerfile" "$app" >/dev/null
b push --quiet --tls-verify=false --format v2s2 --digestfile "$storage/digest" seed-app:bench "docker://$target"
cat "$storage/digest"
