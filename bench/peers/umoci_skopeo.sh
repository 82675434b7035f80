#!/bin/sh
# Peers (b) and (b'): install the dependencies for the Lambda platform into a directory, add it
# and the app as two layers with umoci, push with skopeo. Layers: `tar` → `umoci raw add-layer`
# (umoci compresses and hashes); Debian's umoci 0.4.7 `insert` writes truncated tars (no padding,
# no end-of-archive blocks: GNU tar and Python reject them), so it is not used.
#   umoci_skopeo.sh pip|uv WORK APP_DIR BASE_REF TARGET_REF [code]
# WORK empty = a fresh runner (no layout, no installer cache: pip --no-cache-dir, uv cache in WORK).
# "code" = only the code changed and WORK holds the previous run: reuse its layout's dependency
# layer (tag "deps") and add a new app layer only.
set -eu
installer=$1 work=$2 app=$3 base=$4 target=$5 mode=${6:-full}
layout=$work/layout
req=$app/requirements.txt
python=3.11
if [ "$mode" != code ]; then
  rm -rf "$layout" "$work/deps"
  skopeo copy --quiet --src-tls-verify=false "docker://$base" "oci:$layout:base"
  if [ "$installer" = pip ]; then
    PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= python3 -m pip install -q --disable-pip-version-check \
      --no-cache-dir --no-compile --only-binary=:all: --platform manylinux2014_x86_64 \
      --python-version "$python" --implementation cp --target "$work/deps" -r "$req" 2>/dev/null
  else
    UV_CACHE_DIR=$work/uv-cache uv pip install -q --no-progress --only-binary :all: \
      --python-platform x86_64-manylinux2014 --python-version "$python" --target "$work/deps" -r "$req"
  fi
  tar -C "$work/deps" --transform 's,^\./*,var/task/,' -cf "$work/deps.tar" .
  umoci raw add-layer --image "$layout:base" --tag deps "$work/deps.tar"
  rm -f "$work/deps.tar"
fi
rm -rf "$work/app" && mkdir -p "$work/app"
cp -R "$app/app.py" "$app/lambda_handler.py" "$app/chalicelib" "$work/app/"
tar -C "$work/app" --transform 's,^\./*,var/task/,' -cf "$work/app.tar" .
umoci raw add-layer --image "$layout:deps" --tag app "$work/app.tar"
umoci config --image "$layout:app" --tag app --config.cmd lambda_handler.handler >/dev/null
skopeo copy --quiet --dest-tls-verify=false --dest-compress-format gzip "oci:$layout:app" "docker://$target"
skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$target"
