#!/usr/bin/env bash
# Installs everything dpt needs from Debian's packages (idempotent; skips apt when all are there).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libprotobuf-dev protobuf-compiler
  libhdf5-dev hdf5-tools zlib1g-dev
  libopenblas-dev libdnnl-dev
  libgtest-dev libgmock-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  libgloo-dev  # the reference collectives plug-in (comm/plugins/gloo; skipped when absent)
  clang-format
  dataset-fashion-mnist
  python3 procps iproute2  # the shell tests: synthetic data and JSON checks, pgrep, ip netns
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
echo "install_deps: done"
