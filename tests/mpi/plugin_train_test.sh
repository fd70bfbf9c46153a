#!/usr/bin/env bash
# The dpt binary with comm.backend "plugin" and the Gloo plug-in (README "Collective plug-ins"):
#   - 2 ranks over the plug-in train the weights 2 ranks over "mpi" and 1 process train;
#   - a bad plugin_path is a config error naming the field;
#   - a hung rank (in code, or stopped with SIGSTOP) makes its peer fail with the plug-in's timeout
#     error, naming the collective; a rank killed with SIGKILL ends the job (mpirun) non-zero.
# Usage: plugin_train_test.sh path/to/dpt path/to/libdpt_gloo.so
set -u
dpt=$(realpath "$1")
plugin=$(realpath "$2")
source "$(dirname "$0")/../test_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --mca btl self,vader,tcp)
passed=0
failed=0
synthetic_dataset "$dpt" data.h5 600 4 4 5
small_mlp_config data.h5 60 4 >cfg.prototxt
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
  --set "fault_injection={rank: 1 step: 3 kind: FAULT_HANG}"
echo "  (took $((SECONDS - start)) s)"

# 4. A rank stopped (SIGSTOP) or killed (SIGKILL) mid-training.
rank_pid() {
  local pid
  for pid in $(pgrep -f "$2"); do
    [[ $(readlink "/proc/$pid/cwd") == "$work" ]] &&
      grep -qz "^OMPI_COMM_WORLD_RANK=$1\$" "/proc/$pid/environ" 2>/dev/null && echo "$pid" && return
  done
}
for signal in STOP KILL; do
  start=$SECONDS
  timeout 60 "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir "s$signal" \
    --set train.epochs=100000 "${use_plugin[@]}" >out.txt 2>&1 &
  job=$!
  victim=""
  for _ in $(seq 100); do
    victim=$(rank_pid 1 "dpt train cfg.prototxt --run-dir s$signal")
    [[ -n $victim ]] && grep -q "epoch 1 step" out.txt && break
    sleep 0.1
  done
  kill -s "$signal" "$victim" 2>/dev/null
  wait $job
  code=$?
  [[ $signal == STOP ]] && kill -9 "$victim" 2>/dev/null
  took=$((SECONDS - start))
  case $signal in
    STOP) pattern="rank 0: .*plugin gloo: .*timed out after 4 s" ;;
    KILL) pattern="plugin gloo: .*peer failed|signal 9|Killed|exited on signal" ;;
  esac
  if [[ -n $victim && $code -ne 0 && $took -le 30 ]] && grep -Eq "$pattern" out.txt; then
    echo "ok SIG$signal of rank 1: exit $code after ${took}s"
    passed=$((passed + 1))
  else
    echo "FAIL SIG$signal of rank 1 (pid '$victim'): exit $code after ${took}s, pattern /$pattern/"
    sed 's/^/  | /' out.txt | tail -8
    failed=$((failed + 1))
  fi
done

echo "plugin_train: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
