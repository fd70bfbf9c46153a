#!/usr/bin/env bash
# The dpt binary with comm.backend "plugin" and the Gloo plug-in (README "Collective plug-ins"):
#   - 2 ranks over the plug-in train the weights 2 ranks over "mpi" and 1 process train;
#   - a bad plugin_path is a config error naming the field;
#   - a hung rank (in code, or stopped with SIGSTOP) makes its peer fail with the plug-in's timeout
#     error, naming the collective; a rank killed with SIGKILL ends the job (mpirun) non-zero.
# Usage: plugin_train_test.sh path/to/dpt path/to/libdpt_gloo.so
set -u
plugin=$(realpath "$2")
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"
synthetic_dataset "$dpt" data.h5 600 4 4 5
# A collective timeout of 60 s (a checkpoint's fsync on a loaded machine can take seconds while the
# peer waits); the faults below set 4 s.
small_mlp_config data.h5 60 60 >cfg.prototxt
use_plugin=(--set comm.backend=plugin --set "comm.plugin_path=$plugin")

# 1. Same weights from the plug-in, from mpi and from one process.
"$dpt" train cfg.prototxt --run-dir one >out.txt 2>&1 || echo "FAIL 1-process training"
expect "2 ranks over mpi" 0 "world: 2 workers over mpi" -- \
  "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir mpi2
expect "2 ranks over the gloo plug-in" 0 "world: 2 workers over plugin:gloo" -- \
  "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir plugin2 "${use_plugin[@]}"
for other in one mpi2; do
  if weights_match plugin2/model.h5 $other/model.h5; then
    echo "ok plugin weights = $other weights"
    passed=$((passed + 1))
  else
    echo "FAIL plugin weights differ from $other"
    failed=$((failed + 1))
  fi
done

# 2. Bad plugin_path: config errors (exit 2) naming the field and the reason.
expect "missing plug-in file" 2 "comm.plugin_path: cannot load \"$work/nope.so\".*No such file" -- \
  "$dpt" train cfg.prototxt --run-dir bad --set comm.backend=plugin \
  --set "comm.plugin_path=$work/nope.so"
expect "plugin without plugin_path" 2 "comm.backend: \"plugin\" needs comm.plugin_path" -- \
  "$dpt" train cfg.prototxt --run-dir bad --set comm.backend=plugin

# 3. A rank hanging in code: its peer's collective times out inside Gloo (4 s).
start=$SECONDS
expect "hung rank (FAULT_HANG)" 6 "rank 0: .*plugin gloo: .*timed out after 4 s" -- \
  timeout 120 "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir hang "${use_plugin[@]}" \
  --set comm.timeout_s=4 --set "fault_injection={rank: 1 step: 3 kind: FAULT_HANG}"
echo "  (took $((SECONDS - start)) s)"

# 4. A rank stopped (SIGSTOP) or killed (SIGKILL) mid-training.
signal_rank1 STOP "rank 0: .*plugin gloo: .*timed out after 4 s" "${use_plugin[@]}"
signal_rank1 KILL "plugin gloo: .*peer failed|signal 9|Killed|exited on signal" "${use_plugin[@]}"

echo "plugin_train: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
