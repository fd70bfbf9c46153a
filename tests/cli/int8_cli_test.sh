#!/usr/bin/env bash
# int8 inference through the dpt binary (README "int8 quantization"): `dpt bench inference` on
# a trained model (calibrated on its training set) and on random weights, its JSON, and bad input
# (exit 2 for usage, 4 for a missing or foreign weights file). Evaluating int8 model files is
# tested in tests/unit/launch/int8_eval_test.cpp, which writes them with the library (the
# `dpt compress` command that writes them from the CLI lives in another change).
# Usage: int8_cli_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

synthetic_dataset "$dpt" data.h5 400 4 4 3
small_mlp_config data.h5 16 60 >cfg.prototxt
expect "train" 0 "weights: run/model.h5" -- "$dpt" train cfg.prototxt --run-dir run
quick=(--batch 64 --seconds 0)
expect "bench inference on trained weights" 0 "batch 1 latency p50 \(us\) +[0-9.]+ +[0-9.]+ +[0-9.]+x" \
  -- "$dpt" bench inference cfg.prototxt --weights run/model.h5 "${quick[@]}" --json bench.json
cp out.txt bench.txt
expect "bench inference names its calibration data" 0 "calibrated on data.h5 \(400 samples\)" \
  -- cat bench.txt
expect "bench inference JSON" 0 "ok" -- python3 -c '
import json, sys
r = json.load(open("bench.json"))
for key in ("batch1_p50_us", "batch1_p99_us", "large_batch_p50_ms", "large_batch_samples_per_s",
            "gemm_batch1_gops", "gemm_large_batch_gops"):
    assert r[key]["fp32"] > 0 and r[key]["int8"] > 0 and r[key]["speedup"] > 0, key
assert r["batch"] == 64 and 0.5 <= r["argmax_agreement"] <= 1, r
assert r["weights_bytes_int8"] < r["weights_bytes_fp32"], r
print("ok")'
expect "bench inference on random weights" 0 "calibrated on synthetic data" \
  -- "$dpt" bench inference cfg.prototxt "${quick[@]}"
expect "bench inference --batch 0" 2 "--batch must be > 0" \
  -- "$dpt" bench inference cfg.prototxt --batch 0
expect "bench inference missing weights" 4 "missing.h5" \
  -- "$dpt" bench inference cfg.prototxt --weights missing.h5
echo "not hdf5" >text.h5
expect "eval of a file that is not HDF5" 4 "text.h5: not an HDF5 file" \
  -- "$dpt" eval cfg.prototxt --weights text.h5

echo "int8_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
