#!/usr/bin/env bash
# dpt's GPU checks in one go, on a GPU machine lent by the device tool (README "Verifying on a
# GPU"): unpacks .gpu/bundle.tar.xz (scripts/gpu_bundle.sh, made on the build machine), points
# the loader at it and at the machine's CUDA and NCCL libraries, then runs every GPU test program
# (their CPU instances too), `dpt devices`, and `dpt bench step` on the large bf16 model
# (examples/gpu/wide_mlp.prototxt) and on the Fashion-MNIST MLP's shapes in float32 and bf16,
# and trains the Fashion-MNIST example on the GPU (when the bundle carries the data); last, the
# multi-rank checks under the bundle's mpirun. Results go to $OUT (or ./gpu-results), six files,
# written as it goes (the device tool returns at most 8, and all that is there at a timeout):
# summary.txt (one line per program, bench and run, rc), devices.txt, tests.log (all test
# output), bench.log (with each bench's JSON), train.log (with metrics.jsonl), mpi.log. Exits
# non-zero when a test program failed, or skipped GPU tests for want of a usable GPU or NCCL
# (rc=3 in summary.txt). Takes a few minutes; each program is cut off after 240 s.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
work=$(mktemp -d)
tar -C "$work" -xJf .gpu/bundle.tar.xz || { echo "gpu_check: no .gpu/bundle.tar.xz (carry .gpu)"; exit 2; }

# NCCL comes with PyTorch there (the nvidia-nccl wheel), cuBLASLt with the CUDA toolkit.
nccl=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name 'libnccl.so.2' -print 2>/dev/null | head -1)
cublaslt=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublasLt.so.13*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$work/lib:${cublaslt:+$(dirname "$cublaslt"):}${nccl:+$(dirname "$nccl"):}${LD_LIBRARY_PATH:-}"
{
  echo "nccl: ${nccl:-not found}"
  echo "cublasLt: ${cublaslt:-not found}"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
} >"$out/summary.txt" 2>&1
"$work/bin/dpt" devices >"$out/devices.txt" 2>&1

failed=0
# Here no GPU test may skip for want of a GPU, cuBLASLt or NCCL (tests/first_gpu.h,
# first_nccl_gpu.h): it would pass without testing anything (a cuBLASLt the loader cannot find
# makes the probe call every GPU unusable). Such a skip counts as a failure (rc=3).
unusable='^(no usable GPU|cuBLASLt: cannot load|NCCL cannot be loaded|this build has no nccl)'
for program in "$work"/bin/*_test; do
  name=$(basename "$program")
  timeout 240 "$program" >"$work/log" 2>&1
  rc=$?
  ((rc == 0)) || failed=1
  counts=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$work/log" | tr -s ' \n' ' ')
  if grep -qE "$unusable" "$work/log"; then
    rc=$((rc == 0 ? 3 : rc))
    failed=1
  fi
  echo "$name rc=$rc $counts" >>"$out/summary.txt"
  { echo "===== $name"; cat "$work/log"; } >>"$out/tests.log"
done

bench() {  # name, config, extra args
  local name=$1 config=$2
  shift 2
  echo "===== bench $name" >>"$out/bench.log"
  timeout 240 "$work/bin/dpt" bench step "$config" --warmup 3 --steps 20 \
    --json "$work/bench_$name.json" "$@" >>"$out/bench.log" 2>&1
  local rc=$?
  ((rc == 0)) || failed=1
  echo "bench $name rc=$rc" >>"$out/summary.txt"
  { echo "===== bench $name JSON"; cat "$work/bench_$name.json" 2>/dev/null; } >>"$out/bench.log"
}
bench wide_bf16 examples/gpu/wide_mlp.prototxt
bench mlp_fp32 examples/fashion_mnist/mlp.prototxt --set device.kind=CUDA --set device.precision=FP32
bench mlp_bf16 examples/fashion_mnist/mlp.prototxt --set device.kind=CUDA --set device.precision=BF16

# The Fashion-MNIST example end to end with device AUTO (it must pick the GPU and say so), then
# evaluated: train.log has the device line, the loss curve, samples/s and the test accuracy.
if [[ -d .gpu/fashion-mnist ]]; then
  for split in train t10k; do
    name=$([[ $split == train ]] && echo train || echo test)
    "$work/bin/dpt" data import-idx --images ".gpu/fashion-mnist/$split-images-idx3-ubyte.gz" \
      --labels ".gpu/fashion-mnist/$split-labels-idx1-ubyte.gz" --out "$work/$name.h5" \
      >>"$out/train.log" 2>&1
  done
  timeout 240 "$work/bin/dpt" train examples/fashion_mnist/mlp.prototxt --run-dir "$work/run" \
    --set "data.train_path=$work/train.h5" --set "data.test_path=$work/test.h5" \
    >>"$out/train.log" 2>&1
  rc=$?
  ((rc == 0)) || failed=1
  echo "train fashion_mnist rc=$rc" >>"$out/summary.txt"
  timeout 60 "$work/bin/dpt" eval examples/fashion_mnist/mlp.prototxt --weights \
    "$work/run/model.h5" --set "data.test_path=$work/test.h5" >>"$out/train.log" 2>&1
  rc=$?
  ((rc == 0)) || failed=1
  echo "eval fashion_mnist rc=$rc $(tail -1 "$out/train.log")" >>"$out/summary.txt"
  { echo "===== metrics.jsonl"; cat "$work/run/metrics.jsonl" 2>/dev/null; } >>"$out/train.log"
fi

# Several ranks through the bundled Open MPI (relocated by OPAL_PREFIX): three ranks choosing
# devices together (the last asks for AUTO), the conformance suite on the nccl backend with 1
# rank, then 2 (on a machine with one GPU, 2 ranks must print SKIP), and what 2 training ranks
# and `bench comm --backend nccl` do with one GPU between them (a clear refusal naming both ranks
# is the expected answer there). mpi.log has every output.
if [[ -x $work/ompi/bin/mpirun ]]; then
  export OPAL_PREFIX=$work/ompi PATH="$work/ompi/bin:$PATH"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_mca_base_component_show_load_errors=0
  ranks() {  # name, ranks, must succeed (1) or may be refused (0), command...
    local name=$1 np=$2 must=$3
    shift 3
    timeout 180 mpirun --oversubscribe -np "$np" "$@" >"$work/log" 2>&1
    local rc=$?
    ((rc == 0 || must == 0)) || failed=1
    # A skip for want of NCCL or a usable GPU means the check did not check.
    ! grep -qE '^SKIP: (NCCL cannot be loaded|nccl needs one usable GPU per rank; 0 usable)' "$work/log" || failed=1
    { echo "===== $name (mpirun -np $np, rc=$rc)"; cat "$work/log"; } >>"$out/mpi.log"
    echo "$name np=$np rc=$rc $(grep -m1 -E 'SKIP|error|rror:|failures|passed' "$work/log")" \
      >>"$out/summary.txt"
  }
  # Three ranks choosing devices together: the last one asks for AUTO and must get the GPU.
  # With one GPU the 2-rank runs may be refused (by name); the conformance suite prints SKIP.
  ranks node_gather 3 1 "$work/bin/mpi_node_gather"
  ranks conformance_nccl 1 1 "$work/bin/backend_conformance" nccl
  ranks conformance_nccl 2 1 "$work/bin/backend_conformance" nccl
  ranks bench_comm_nccl 2 0 "$work/bin/dpt" bench comm --backend nccl --max-bytes 256M
  if [[ -f $work/train.h5 ]]; then
    ranks train_fashion_mnist 2 0 "$work/bin/dpt" train examples/fashion_mnist/mlp.prototxt \
      --run-dir "$work/run2" --set train.epochs=1 --set "data.train_path=$work/train.h5" \
      --set "data.test_path=$work/test.h5"
  fi
fi

cat "$out/summary.txt"
rm -rf "$work"
exit $failed
