#!/usr/bin/env bash
# The README's second command: installs dependencies, builds, checks formatting and the
# one-definition rule (an LTO build of dpt), and runs every test through ctest. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/check_format.sh
scripts/check_odr.sh
cd build
ctest --output-on-failure --timeout 600 -j "$(nproc)"
