#!/usr/bin/env bash
# End-to-end data parallelism and fault handling under a real mpirun (README "Failures"):
#   - 2 and 3 ranks train the weights 1 process trains (same global batch), to fp32 rounding;
#   - a rank that throws, exits, hangs (in code, or stopped with SIGSTOP) or is killed with
#     SIGKILL ends the whole job non-zero within the collective timeout, naming the rank;
#   - ranks started with different configs are refused before training, naming rank and field;
#   - a deliberately slowed rank is named by the straggler report;
#   - dpt compress (pruning with fine-tuning) on 2 ranks gives the 1-process model.
# Usage: mpi_train_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

# Synthetic data: 600 samples of 16 features, 4 classes, written through dpt's IDX import.
synthetic_dataset "$dpt" data.h5 600 4 4 5

# A collective timeout of 60 s: rank 0 saves a checkpoint after each epoch while rank 1 waits in
# the next step's collective, and on a loaded machine the save's fsync alone can take seconds.
# The faults below set 4 s, so that a missing rank is found quickly.
small_mlp_config data.h5 60 60 >cfg.prototxt

# expect_failure NAME PATTERN MAX_SECONDS -- COMMAND...: COMMAND exits non-zero within
# MAX_SECONDS of its failure and its output matches PATTERN. The clock starts when rank 0 says
# it is training (the faults come at step 3): start-up, which a loaded machine stretches at will,
# is not what the bound is about. A job refused before training is timed from its start.
expect_failure() {
  local name=$1 pattern=$2 limit=$3
  shift 4
  local start=$SECONDS since="its start"
  timeout 120 "$@" >out.txt 2>&1 &
  local job=$!
  while kill -0 $job 2>/dev/null; do
    if grep -q "^training: " out.txt 2>/dev/null; then
      start=$SECONDS
      since="training started"
      break
    fi
    sleep 0.05
  done
  wait $job
  local code=$? took=$((SECONDS - start))
  if [[ $code -ne 0 && $code -ne 124 && $took -le $limit ]] && grep -Eq -- "$pattern" out.txt; then
    echo "ok $name: exit $code ${took}s after $since"
    pass
  else
    fail "$name: exit $code ${took}s after $since (limit ${limit}s), pattern /$pattern/"
  fi
}

# 1. The same model from 1, 2 and 3 processes.
"$dpt" train cfg.prototxt --run-dir one >out.txt 2>&1 || fail "1-process training"
for n in 2 3; do
  if "${mpi[@]}" -np $n "$dpt" train cfg.prototxt --run-dir world$n >out.txt 2>&1 &&
    grep -q "world: $n workers over mpi" out.txt && weights_match one/model.h5 world$n/model.h5; then
    echo "ok $n ranks train the 1-process model"
    pass
  else
    fail "$n ranks vs 1 process"
  fi
done

# 1b. On one node the gradient buffer is shared memory (all-reduce without copies); with /dev/shm
# full (a private 64 KiB tmpfs in a mount namespace, TCP between the ranks) training says why it
# is not, and still trains the 1-process model.
if "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir shared >out.txt 2>&1 &&
  grep -q "gradient buffer in memory the 2 workers share: all-reduce without copies" out.txt; then
  echo "ok gradient buffer shared on one node"
  pass
else
  fail "gradient buffer shared on one node"
fi
if unshare -m true 2>/dev/null; then
  if unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs /dev/shm && exec "$@"' sh \
    mpirun --oversubscribe --mca btl self,tcp -np 2 "$dpt" train cfg.prototxt --run-dir noshm \
    >out.txt 2>&1 &&
    grep -Eq "gradient buffer in this worker's own memory \(all-reduce with copies\): .*/dev/shm: No space left" out.txt &&
    weights_match one/model.h5 noshm/model.h5; then
    echo "ok /dev/shm full: said why, same model"
    pass
  else
    fail "/dev/shm full"
  fi
else
  echo "skip /dev/shm full (unshare -m needs root)"
fi

# 2. Faults (at step 3, before any save). Timeout 4 s: every case must end well within 20 s of
# the start of training.
for kind in FAULT_THROW FAULT_EXIT FAULT_HANG; do
  case $kind in
    FAULT_THROW) pattern="rank 1: dpt train: internal error: fault injection: failing at step 3" ;;
    FAULT_EXIT) pattern="exit(ed with)? (code|status).*42|Exit code: +42" ;;
    FAULT_HANG) pattern="rank 0: .*step 3: all_reduce #[0-9]+ timed out after 4 s; ranks that did not arrive: 1" ;;
  esac
  expect_failure "$kind" "$pattern" 20 -- "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir f \
    --set comm.timeout_s=4 --set "fault_injection={rank: 1 step: 3 kind: $kind}"
done

# A rank killed with SIGKILL, and one stopped with SIGSTOP (hung, as seen from its peers).
signal_rank1 KILL "signal 9|Killed|exited on signal"
signal_rank1 STOP "timed out after 4 s; ranks that did not arrive: 1"

# 3. A slow rank is named by the straggler report, and the run still finishes.
if "${mpi[@]}" -np 3 "$dpt" train cfg.prototxt --run-dir slow \
  --set "fault_injection={rank: 2 step: 5 kind: FAULT_SLOW slow_ms: 40}" \
  --set monitor.straggler_every_steps=10 --set train.batch_size=48 >out.txt 2>&1 &&
  grep -Eq "straggler: rank 2 took [0-9.]+ ms per step to compute, [0-9.]+x the median" out.txt &&
  grep -q '"kind":"ranks"' slow/metrics.jsonl; then
  echo "ok straggler named"
  pass
else
  fail "straggler report"
fi

# 4. A timeline per rank, merged: both ranks, forward/backward per layer, bucket all-reduces.
if "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir traced --set trace.enabled=true \
  --set trace.max_steps=4 >out.txt 2>&1 && "$dpt" trace merge traced >>out.txt 2>&1 &&
  python3 - traced/trace/merged.json <<'PY' >>out.txt 2>&1
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
spans = [e for e in events if e["ph"] == "X"]
assert {e["pid"] for e in spans} == {0, 1}, "both ranks"
for cat in ("step", "data", "forward", "backward", "all_reduce", "sync", "optimizer"):
    assert any(e["cat"] == cat for e in spans), cat
assert all(e["tid"] == 1 for e in spans if e["cat"] == "all_reduce"), "bucket on comm thread"
assert sum(e["cat"] == "step" for e in spans) == 8, "4 steps per rank"
PY
then
  echo "ok trace merge"
  pass
else
  fail "trace merge"
fi

# 5. The collective benchmark runs every algorithm, checks every result and writes its JSON.
if "${mpi[@]}" -np 3 "$dpt" bench comm --min-bytes 4K --max-bytes 128K --iters 3 \
  --json bench.json >out.txt 2>&1 && python3 - bench.json <<'PY' >>out.txt 2>&1
import json, sys
b = json.load(open(sys.argv[1]))
assert b["world_size"] == 3 and b["memcpy"]
sizes = [row["bytes"] for row in b["sizes"]]
assert sizes == [4096 << i for i in range(6)], sizes
for row in b["sizes"]:
    assert set(row["results"]) >= {"ring", "mpi", "native", "auto"}, row["results"].keys()
    assert all(r["time_us"] > 0 for r in row["results"].values())
PY
then
  echo "ok bench comm"
  pass
else
  fail "bench comm"
fi

# 5b. bench comm --backend nccl: with one usable GPU per rank it times NCCL, otherwise a config
# error naming the flag (every build and machine answers one way or the other, never a crash).
gpus=$("$dpt" devices --json | python3 -c 'import json, sys
print(sum(1 for g in json.load(sys.stdin)["gpus"]["devices"] if g["usable"]))')
if [[ $gpus -ge 2 ]]; then
  "${mpi[@]}" -np 2 "$dpt" bench comm --backend nccl --min-bytes 4K --max-bytes 64K --iters 3 \
    >out.txt 2>&1 && grep -q "nccl" out.txt && { echo "ok bench comm nccl"; pass; } ||
    fail "bench comm nccl"
else
  expect_failure "bench comm nccl without GPUs" "--backend nccl needs one usable GPU per rank" 60 -- \
    "${mpi[@]}" -np 2 "$dpt" bench comm --backend nccl --max-bytes 64K
fi

# 6. Ranks that disagree are refused at start-up.
# Refused at start-up: the limits are the start-up of 2 and 7 processes on a loaded 2-CPU machine
# plus the refusal (a hang is what they catch, and the job's timeout of 120 s).
expect_failure "different configs" "rank 1 differs from rank 0 in config.*optimizer.lr" 60 -- \
  "${mpi[@]}" -np 1 "$dpt" train cfg.prototxt --run-dir d : \
  -np 1 "$dpt" train cfg.prototxt --run-dir d --set optimizer.lr=0.02
expect_failure "batch not divisible" "train.batch_size: 60 is not divisible by the 7 workers" 60 -- \
  "${mpi[@]}" -np 7 "$dpt" train cfg.prototxt --run-dir d

# 7. dpt compress fine-tunes through the same trainer: 2 ranks give the 1-process pruned model.
prune=(--set compress.prune.sparsity=0.8 --set compress.prune.iterations=2
  --set compress.prune.finetune_steps=10 --set compress.latency_repeats=5
  --set compress.throughput_batch=32 --set compress.throughput_repeats=2)
if "$dpt" compress cfg.prototxt --weights one/model.h5 --out c1.h5 "${prune[@]}" >out.txt 2>&1 &&
  "${mpi[@]}" -np 2 "$dpt" compress cfg.prototxt --weights one/model.h5 --out c2.h5 \
    "${prune[@]}" >out.txt 2>&1 && grep -q "^unstructured 80% + fine-tune" out.txt &&
  weights_match c1.h5 c2.h5; then
  echo "ok compress under mpirun"
  pass
else
  fail "compress under mpirun"
fi

echo "mpi_train: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
