#!/usr/bin/env bash
# Packs what a lent GPU machine (device tool: H100/H200, CUDA 13 as here, none of our Debian
# libraries, no network) needs to run dpt's GPU checks, scripts/gpu_check.sh: dpt, every program
# with GPU tests, Open MPI's mpirun with its components, and the shared libraries they load from
# this machine. Not packed: glibc and libstdc++ (the GPU machine's are newer, and backward
# compatible), the NVIDIA driver's and CUDA's libraries (cuBLASLt, NCCL: found there). Writes
# .gpu/bundle.tar.xz and .gpu/fashion-mnist/ (.gpu/ is listed in .git/info/exclude, so it travels
# only when carried). Then, from a session with a GPU:
#   run(command: "bash scripts/gpu_check.sh", carry: [".gpu"], timeout_s: 420)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/dpt ]] || bash scripts/build.sh
cmake --build build -j "$(nproc)" >/dev/null

# The programs whose tests need a GPU (tests/CMakeLists.txt: the gpu label), the unit tests and
# MPI programs with cases that run only where a GPU is usable, and dpt.
programs=(build/dpt)
for test in build/tests/cuda_*_test build/tests/gpu_*_test build/tests/nccl_*_test \
  build/tests/cross_device_test build/tests/bench_gpu_test build/tests/device_select_gpu_test \
  build/tests/backend_conformance build/tests/mpi_node_gather; do
  [[ -x $test ]] && programs+=("$test")
done
# Every program of tests/gpu/ must be in: one left out would not fail, it would just not run.
for source in tests/gpu/*_test.cpp; do
  test=build/tests/$(basename "$source" .cpp)
  [[ " ${programs[*]} " == *" $test "* ]] || { echo "gpu_bundle: $test missing" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "${programs[@]}" "$stage/bin/"
# Open MPI's launcher, daemon, components (dlopened, so ldd does not list them) and help texts,
# laid out as under /usr so that OPAL_PREFIX relocates them: the GPU machine has no Open MPI, and
# gpu_check.sh runs the multi-rank checks with this mpirun.
ompi=$stage/ompi
mkdir -p "$ompi/bin" "$ompi/lib/x86_64-linux-gnu/openmpi/lib" "$ompi/share"
cp /usr/bin/orterun /usr/bin/orted "$ompi/bin/"
ln -s orterun "$ompi/bin/mpirun"
cp -r /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 "$ompi/lib/x86_64-linux-gnu/openmpi/lib/"
cp -r /usr/share/openmpi "$ompi/share/"
# Every shared library they link, resolved (-L: the file, not the link), except those the GPU
# machine must provide itself.
skip='^(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux-x86-64|libcuda|libnvidia)[.-]'
for program in "${programs[@]}" "$ompi"/bin/orte* "$ompi"/lib/*/openmpi/lib/openmpi3/*.so; do
  ldd "$program" | awk '/=> \// {print $3}'
done | sort -u | while read -r library; do
  name=$(basename "$library")
  [[ $name =~ $skip ]] && continue
  cp -L "$library" "$stage/lib/$name"
done
mkdir -p .gpu
# (git rev-parse: in a worktree .git is a file, and info/exclude is the main repository's)
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
tar -C "$stage" -cJf .gpu/bundle.tar.xz bin lib ompi
# Fashion-MNIST as the Debian package ships it (30 MB, already compressed): gpu_check.sh trains
# the example on the GPU with it.
rm -rf .gpu/fashion-mnist
if [[ -d /usr/share/datasets/fashion-mnist ]]; then
  cp -r /usr/share/datasets/fashion-mnist .gpu/fashion-mnist
fi
echo "gpu_bundle: .gpu/bundle.tar.xz ($(du -h .gpu/bundle.tar.xz | cut -f1)):" \
  "${#programs[@]} programs, $(ls "$stage/lib" | wc -l) libraries"
