#!/bin/sh
# Floor: the layer work alone on an installed dependency tree — tar, compress, sha256.
#   floor.sh TREE OUT gzip6|pigz6|pigz1|none
set -eu
tree=$1 out=$2 how=$3
case $how in
  gzip6) tar -C "$tree" -cf - . | gzip -6 | tee "$out" | sha256sum ;;
  pigz6) tar -C "$tree" -cf - . | pigz -6 -p "$(nproc)" | tee "$out" | sha256sum ;;
  pigz1) tar -C "$tree" -cf - . | pigz -1 -p "$(nproc)" | tee "$out" | sha256sum ;;
  none) tar -C "$tree" -cf - . | tee "$out" | sha256sum ;;
esac
