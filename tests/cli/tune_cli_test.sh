#!/usr/bin/env bash
# `dpt tune` end to end (README "Tuning"): a tiny MLP under a small memory budget is tuned, the
# tuned config (written beside the input, which stays untouched) trains; its JSON keeps the
# verified peak under the budget; a wanted global batch too big to fit gets gradient
# accumulation; the LR range test runs; an over-budget model and --out pointing at the input are
# config errors (exit 2); under mpirun 2 ranks tune together and the result trains on 2 workers.
# Usage: tune_cli_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"
# json FILE EXPRESSION: evaluates a Python expression over the JSON object `j`; true -> exit 0.
json() {
  python3 -c "import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}
# field FILE NAME: the value of the first `NAME: value` line of a config.
field() { awk -v name="$2:" '$1 == name {print $2; exit}' "$1"; }

synthetic_dataset "$dpt" data.h5 512 4 4 1
small_mlp_config data.h5 32 60 >small.prototxt
sum=$(md5sum small.prototxt)

# 1. A 50 KiB budget: the model (about 12 KiB with Adam) fits, batches up to about 45 rows do.
"$dpt" tune small.prototxt --set tune.memory_budget_mb=0.05 --set tune.max_batch=64 \
  --json tune.json >out.txt 2>&1
check "tune: exit 0, tuned config written beside the input" \
  bash -c "[[ $? -eq 0 ]] && grep -q 'wrote small_tuned.prototxt' out.txt && [[ -f small_tuned.prototxt ]]"
check "tune: the input config is untouched" bash -c "[[ '$(md5sum small.prototxt)' == '$sum' ]]"
check "tune: explanation header and throughput table" \
  bash -c "head -1 small_tuned.prototxt | grep -q '^# Tuned by' &&
           grep -q '^# largest per-worker batch without accumulation: [0-9]* (limit: memory)' small_tuned.prototxt &&
           grep -q '^# throughput: batch/worker' small_tuned.prototxt && grep -q 'optimizer.lr:' out.txt"
check "tune: verified peak <= budget, largest batch from the fit" \
  json tune.json "j['budget_bytes'] == 52428 and j['largest_batch_peak_bytes'] <= 52428 and
    j['largest_batch'] == int((52428 - j['memory_fit']['fixed_bytes']) //
                              j['memory_fit']['per_sample_bytes'])"
check "tune: every timed batch stayed under the budget" \
  json tune.json "all(t['peak_bytes'] <= j['budget_bytes'] for t in j['throughput'])"
check "tune: JSON batch is the tuned config's" \
  json tune.json "j['global_batch'] == $(field small_tuned.prototxt batch_size)"
"$dpt" train small_tuned.prototxt --run-dir run >out.txt 2>&1
check "train with the tuned config" bash -c "[[ $? -eq 0 ]] && grep -q 'test_accuracy' out.txt"

# 2. A global batch of 256 does not fit in one pass: accumulation.
"$dpt" tune small.prototxt --out acc.prototxt --set tune.memory_budget_mb=0.05 \
  --set tune.global_batch=256 --set tune.max_batch=64 >out.txt 2>&1
check "tune --set tune.global_batch=256: exit 0" bash -c "[[ $? -eq 0 ]]"
check "accumulation: batch 256 in micro-batches that fit" \
  bash -c "[[ $(field acc.prototxt batch_size) -eq 256 && $(field acc.prototxt micro_batch_size) -gt 0 ]] &&
           grep -q 'accumulation steps' out.txt"
"$dpt" train acc.prototxt --run-dir run_acc >out.txt 2>&1
check "train with accumulation" bash -c "[[ $? -eq 0 ]] && grep -q 'test_accuracy' out.txt"

# 3. The LR range test replaces the scaled lr.
"$dpt" tune small.prototxt --out lr.prototxt --set tune.memory_budget_mb=0.05 \
  --set tune.max_batch=16 --set tune.lr_range_test=true --set tune.lr_range_steps=30 \
  --json lr.json >out.txt 2>&1
check "LR range test: exit 0, pick written" \
  bash -c "[[ $? -eq 0 ]] && grep -q '^LR range test: ' out.txt" &&
  check "LR range test: the pick is min-loss lr / 10 and is the tuned lr" \
    json lr.json "abs(j['lr_range_test']['pick'] - j['lr_range_test']['min_loss_lr'] / 10) < 1e-12
                  and abs(j['lr']['tuned'] - j['lr_range_test']['pick']) < 1e-6 * j['lr']['tuned']"

# 4. Errors.
"$dpt" tune small.prototxt --set tune.memory_budget_mb=0.001 >out.txt 2>&1
check "over budget: exit 2 naming tune.memory_budget_mb and the figures" \
  bash -c "[[ $? -eq 2 ]] && grep -Eq 'tune.memory_budget_mb: the model alone does not fit: 1.0 KiB per worker .* against [0-9.]+ KiB measured' out.txt"
"$dpt" tune small.prototxt --out ./small.prototxt >out.txt 2>&1
check "--out is the input: exit 2" bash -c "[[ $? -eq 2 ]] && grep -q 'never overwrites' out.txt"

# 5. Two ranks under mpirun: both measure, rank 0 writes, and the result trains on 2 workers.
if command -v mpirun >/dev/null; then
  mpirun --oversubscribe -np 2 "$dpt" tune small.prototxt --out mpi.prototxt \
    --set tune.memory_budget_mb=0.05 --set tune.max_batch=32 >out.txt 2>&1
  check "mpirun -np 2 tune: exit 0, one tuned config, 2 workers" \
    bash -c "[[ $? -eq 0 ]] && [[ \$(grep -c '^wrote mpi.prototxt' out.txt) -eq 1 ]] &&
             grep -q '2 workers' mpi.prototxt"
  mpirun --oversubscribe -np 2 "$dpt" train mpi.prototxt --run-dir run_mpi >out.txt 2>&1
  check "mpirun -np 2 train with the tuned config" \
    bash -c "[[ $? -eq 0 ]] && grep -q 'test_accuracy' out.txt"
else
  echo "skip mpirun: not installed"
fi

echo "tune_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
