#!/usr/bin/env bash
# Link-time check of the one-definition rule: builds dpt (without CUDA, into build-odr/) with
# link-time optimisation, where GCC compares the types of every translation unit, and fails on
# -Wodr. Two classes of one name in one namespace (dpt::Timing twice, each with its own
# std::vector<Timing> code) compile and link cleanly otherwise, and corrupt memory at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-odr -DCMAKE_BUILD_TYPE=Release -DDPT_WITH_CUDA=OFF \
  -DCMAKE_CXX_FLAGS="-flto=auto -Werror=odr" \
  -DCMAKE_EXE_LINKER_FLAGS="-flto=auto -Werror=odr" >/dev/null
cmake --build build-odr -j "$(nproc)" --target dpt >/dev/null
echo "check_odr: dpt links with LTO and no one-definition-rule violation"
