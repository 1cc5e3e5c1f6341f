#!/usr/bin/env bash
# Installs what convnet needs on Debian 12 (bookworm), by package name; each is explained in the
# README's "Dependencies" section. Uses sudo when not run as root.
set -euo pipefail
packages=(g++ cmake ninja-build pkgconf zlib1g-dev libstb-dev libgtest-dev dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
