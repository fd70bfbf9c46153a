#!/usr/bin/env bash
# Heterogeneous workers under a real mpirun (README "Heterogeneous workers"): with
# comm.balance: BALANCE_THROUGHPUT and rank 1 slowed (fault_injection FAULT_SLOW_SAMPLES),
#   - rank 1 gets fewer rows, the console and metrics.jsonl say so, and the weights are the ones
#     1 process trains (same global batch), to fp32 rounding;
#   - ranks started with different device settings (mpirun MPMD: threads 2 and 1) are accepted;
#   - a resume continues with the checkpoint's shares (shown by `dpt checkpoint inspect`);
#   - `dpt bench step` times equal and balanced shares in one run and writes both to its JSON.
# Usage: mpi_balance_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

synthetic_dataset "$dpt" data.h5 600 4 4 5
# A 60 s collective timeout: rank 0 saves after each epoch while rank 1 waits in the next step's
# collective, and on a loaded machine a save (fsync included) can take many seconds.
small_mlp_config data.h5 60 60 >cfg.prototxt
balanced=(--set comm.balance=BALANCE_THROUGHPUT
  --set "fault_injection={rank: 1 kind: FAULT_SLOW_SAMPLES slow_us_per_sample: 1000}")

# shares_of FILE: the last "shares A, B of N rows" the console printed, as "A B".
shares_of() {
  grep -Eo "shares [0-9]+(, [0-9]+)* of [0-9]+ rows" "$1" | tail -1 |
    sed -E 's/shares //; s/ of .*//; s/,//g'
}

# 1. A slowed rank gets fewer rows; the model is the 1-process model.
"$dpt" train cfg.prototxt --run-dir one >out.txt 2>&1 || fail "1-process training"
if "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir two "${balanced[@]}" >out.txt 2>&1 &&
  read -r a b <<<"$(shares_of out.txt)" && [[ -n $b && $b -lt $a && $((a + b)) -eq 60 ]] &&
  grep -q '"kind":"balance"' two/metrics.jsonl && weights_match one/model.h5 two/model.h5; then
  echo "ok slowed rank 1 gets $b of 60 rows; weights match 1 process"
  pass
else
  fail "balanced 2 ranks"
fi

# 2. Different device settings per rank (MPMD) are accepted; balanced, the model is the same.
if "${mpi[@]}" -np 1 "$dpt" train cfg.prototxt --run-dir mpmd --set device.threads=2 \
  "${balanced[@]}" : -np 1 "$dpt" train cfg.prototxt --run-dir mpmd --set device.threads=1 \
  "${balanced[@]}" >out.txt 2>&1 && grep -q "balance: steps 3-7 measured" out.txt &&
  weights_match one/model.h5 mpmd/model.h5; then
  echo "ok MPMD ranks with 2 and 1 threads"
  pass
else
  fail "MPMD device settings"
fi

# 3. Resume: the shares come from the checkpoint, not from a new measurement (without the
# slowdown a new one would give about 30 rows each).
if "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir res --set train.max_steps=12 \
  "${balanced[@]}" >out.txt 2>&1 && saved=$(shares_of out.txt) &&
  "$dpt" checkpoint inspect res/checkpoints/step_000012.h5 >inspect.txt 2>&1 &&
  grep -q "rows per worker (comm.balance) ${saved/ /, }" inspect.txt &&
  "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir res --resume auto \
    --set comm.balance=BALANCE_THROUGHPUT >out.txt 2>&1 &&
  grep -q "balance: continuing with the checkpoint's shares ${saved/ /, } of 60 rows" out.txt &&
  ! grep -q "balance: steps" out.txt && weights_match one/model.h5 res/model.h5; then
  echo "ok resume continues with shares $saved"
  pass
else
  fail "resume keeps the shares"
fi

# 4. The benchmark: equal against balanced shares, same run, both in the JSON.
if "${mpi[@]}" -np 2 "$dpt" bench step cfg.prototxt --warmup 2 --steps 6 --json bench.json \
  "${balanced[@]}" >out.txt 2>&1 && grep -q "throughput shares" out.txt &&
  python3 - bench.json <<'PY' >>out.txt 2>&1; then
import json, sys
b = json.load(open(sys.argv[1]))["balance"]
assert b["equal"]["shares"] == [30, 30], b["equal"]
shares = b["throughput"]["shares"]
assert sum(shares) == 60 and shares[1] < shares[0], shares
assert b["simulated_slow_rank"] == {"rank": 1, "us_per_sample": 1000}, b
assert b["equal"]["step_time_p50_ms"] > 0 and b["throughput"]["step_time_p50_ms"] > 0
assert len(b["samples_per_s"]) == 2
PY
  echo "ok bench step compares equal and balanced shares"
  pass
else
  fail "bench step balance"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
