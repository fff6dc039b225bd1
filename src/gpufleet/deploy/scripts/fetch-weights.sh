#!/bin/sh
# Init container of vLLM pods (and of the pre-warm DaemonSet), rendered by gpufleet:
# fetch one model's weights into the node-local cache once per node.
#
#   WEIGHTS_URI     s3://bucket/prefix/ (aws s3 sync) or http(s)://.../weights.tar (curl + tar)
#   WEIGHTS_DIR     cache directory of this model, e.g. /models/llama-3-8b
#   WEIGHTS_SHA256  optional expected digest of the files (see below)
#
# The digest of a directory is the sha256 of its sorted `sha256sum` listing:
#   cd DIR && find . -type f ! -name '.gpufleet-*' -print0 | LC_ALL=C sort -z \
#     | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
# Downloads go to a private directory that is renamed into place only when complete
# (and matching WEIGHTS_SHA256 when given), so a warm cache is a directory holding
# .gpufleet-sha256; it is reused without downloading when that digest is the expected one.
set -eu

: "${WEIGHTS_URI:?}" "${WEIGHTS_DIR:?}"
expected="${WEIGHTS_SHA256:-}"
marker="$WEIGHTS_DIR/.gpufleet-sha256"

if [ -f "$marker" ]; then
  have=$(cat "$marker")
  if [ -z "$expected" ] || [ "$have" = "$expected" ]; then
    echo "weights cache warm: $WEIGHTS_DIR (sha256 $have)"
    exit 0
  fi
  echo "cached weights in $WEIGHTS_DIR have sha256 $have, expected $expected: fetching again"
fi

partial="$WEIGHTS_DIR.partial-${HOSTNAME:-$$}"
rm -rf "$partial"
mkdir -p "$partial"
echo "fetching $WEIGHTS_URI into $WEIGHTS_DIR"
case "$WEIGHTS_URI" in
  s3://*)
    aws s3 sync --only-show-errors --no-progress "$WEIGHTS_URI" "$partial"
    ;;
  http://* | https://*)
    curl -fsSL --retry 5 -o "$partial/.gpufleet-download.tar" "$WEIGHTS_URI"
    tar -x -f "$partial/.gpufleet-download.tar" -C "$partial"
    rm -f "$partial/.gpufleet-download.tar"
    ;;
  *)
    echo "unsupported weights URI (use s3:// or https://): $WEIGHTS_URI" >&2
    exit 2
    ;;
esac

digest=$(cd "$partial" && find . -type f ! -name '.gpufleet-*' -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -n "$expected" ] && [ "$digest" != "$expected" ]; then
  echo "checksum mismatch for $WEIGHTS_URI: got $digest, expected $expected" >&2
  rm -rf "$partial"
  exit 1
fi
echo "$digest" > "$partial/.gpufleet-sha256"

if [ -d "$WEIGHTS_DIR" ] && [ "$(cat "$marker" 2>/dev/null || true)" != "$digest" ]; then
  stale="$WEIGHTS_DIR.stale-${HOSTNAME:-$$}"
  mv -T "$WEIGHTS_DIR" "$stale" && rm -rf "$stale"
fi
if mv -T "$partial" "$WEIGHTS_DIR" 2>/dev/null; then
  echo "weights ready: $WEIGHTS_DIR (sha256 $digest)"
else
  echo "another pod filled $WEIGHTS_DIR first; using it"
  rm -rf "$partial"
fi
