#!/usr/bin/env bash
# Installs what convnet needs on Debian 12 (bookworm), by package name; each is explained in the
# README's "Dependencies" section. Uses sudo when not run as root.
#   tools/install-deps.sh          what building and training need (the compiler, the build, zlib,
#                                  stb, libjpeg-turbo, the Fashion-MNIST data, Open MPI for training on several
#                                  processes and hosts)
#   tools/install-deps.sh --tests  that, and what only the tests need (GoogleTest, PyTorch and
#                                  ONNX for the interchange tests, Chromium for the report test,
#                                  iproute2 for the two-host test,
#                                  Node.js and ONNX Runtime from npm)
set -euo pipefail
cd "$(dirname "$0")/.."
tests=false
case "${1:-}" in
  "") ;;
  --tests) tests=true ;;
  *) echo "usage: tools/install-deps.sh [--tests]" >&2; exit 2 ;;
esac
packages=(g++ cmake ninja-build pkgconf zlib1g-dev libstb-dev libturbojpeg0-dev dataset-fashion-mnist
  libopenmpi-dev openmpi-bin)
if $tests; then
  packages+=(libgtest-dev python3-torch python3-onnx chromium iproute2)
  # The ONNX export test runs ONNX Runtime under Node.js: Debian's nodejs and npm, unless a node
  # and npm are already on the PATH (another Node.js package may provide both and conflicts with
  # Debian's npm).
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node, at the version tests/onnx/package-lock.json pins, into tests/onnx/node_modules
# (from the npm registry; tests/onnx/.npmrc skips its optional CUDA download). Only when missing
# or older than the lock file, and never fatal: without it the ONNX Runtime test says it is
# skipped and why.
$tests || exit 0
lock=tests/onnx/package-lock.json
installed=tests/onnx/node_modules/.package-lock.json
if [[ ! -f $installed || $lock -nt $installed ]]; then
  echo "installing onnxruntime-node in tests/onnx (npm ci)"
  (cd tests/onnx && npm ci --no-audit --no-fund) ||
    echo "warning: npm ci in tests/onnx failed; the onnx_runtime test will be skipped" >&2
fi
