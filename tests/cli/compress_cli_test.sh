#!/usr/bin/env bash
# End-to-end test of `dpt compress`: train a small MLP on a synthetic dataset, prune it
# (unstructured with fine-tuning rounds, structured), quantize it to int8 (alone and after
# structured pruning), check the files, the table and its JSON, and that `dpt eval` runs the
# outputs (the structured ones with the config written next to them) and finds the accuracy the
# table reports. Bad input gives one line and the documented exit code.
# Usage: compress_cli_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

# table_accuracy LABEL_REGEX: the test accuracy of the table row whose method matches.
table_accuracy() { grep -E "^$1 " out.txt | grep -Eo ' 0\.[0-9]{4}| 1\.0000' | head -1 | tr -d ' '; }
# eval_accuracy: the accuracy printed by dpt eval.
eval_accuracy() { grep -Eo 'test_accuracy [0-9.]+' out.txt | cut -d' ' -f2; }

synthetic_dataset "$dpt" data.h5 400 4 4 3
small_mlp_config data.h5 20 60 >cfg.prototxt
cat >>cfg.prototxt <<'CFG'
compress { latency_repeats: 20 latency_warmup: 2 throughput_batch: 64 throughput_repeats: 3 }
CFG
expect "train" 0 "test_accuracy" -- "$dpt" train cfg.prototxt --run-dir run

# Unstructured 80 % in 2 rounds of 30 fine-tuning steps.
expect "compress unstructured" 0 "^unstructured 80% \+ fine-tune \(2 x 30 steps\) .* 80\.0% of weights" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out small.h5 --json small.json \
  --set compress.prune.sparsity=0.8 --set compress.prune.iterations=2 \
  --set compress.prune.finetune_steps=30
check "table has the original" grep -Eq "^fp32 original .* 676 +676 +- " out.txt
check "table has the one-shot row" grep -Eq "^unstructured 80% one shot .* 164 +80\.0% of weights" out.txt
check "says the file is not smaller" grep -q "no smaller unless it is compressed" out.txt
check "fine-tuning runs next to --out" test -s small_finetune/round_2/metrics.jsonl
check "one-shot model written" test -s small_finetune/oneshot.h5
check "no config for same shapes" test ! -e small.prototxt
check "round lines" grep -q "round 2/2: pruned 80.0% of weights, fine-tuned 30 steps" err.txt
python3 - small.json <<'PY' && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: JSON"; }
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert [r["method"] for r in rows][0] == "fp32 original", rows
assert rows[-1]["nonzero"] == 164 and rows[-1]["params"] == 676, rows[-1]
assert rows[-1]["file_bytes"] > 0 and rows[-1]["gzip_bytes"] < rows[0]["gzip_bytes"], rows
assert all(r["latency_p50_ms"] > 0 and r["samples_per_s"] > 0 for r in rows), rows
PY
reported=$(table_accuracy 'unstructured 80% \+ fine-tune')
# 80 % of the 640 weights are exactly zero in the file; the 36 biases are not pruned.
zeros=$(dump_weights small.h5 | awk '$1 == 0 {n++} END {print n + 0}')
check "512 zero weights in the file" test "$zeros" -ge 512
expect "eval unstructured" 0 "test_accuracy" -- "$dpt" eval cfg.prototxt --weights small.h5
check "eval matches the table ($reported)" test "$(eval_accuracy)" = "$reported"

# Structured 50 % of the 32 hidden neurons, one shot.
expect "compress structured" 0 "wrote shrunk.h5 and shrunk.prototxt \(hidden layers 32 -> 16\)" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out shrunk.h5 \
  --set compress.prune.sparsity=0.5 --set compress.prune.structure=STRUCTURED
check "structured row" grep -Eq "^structured 50% .* 340 +340 +50\.0% of neurons" out.txt
reported=$(table_accuracy 'structured 50%')
check "shrunk config" grep -q "units: 16" shrunk.prototxt
expect "eval structured" 0 "test_accuracy" -- "$dpt" eval shrunk.prototxt --weights shrunk.h5
check "eval matches the table ($reported)" test "$(eval_accuracy)" = "$reported"
expect "eval structured with the original config" 4 "shrunk.h5: params/dense0/weight has shape \[16, 16\], the model expects \[32, 16\]" -- \
  "$dpt" eval cfg.prototxt --weights shrunk.h5

# int8 alone: OUT is the int8 model, dpt eval runs it and finds the table's accuracy.
expect "compress int8" 0 "wrote q.h5 \(int8\); evaluate with: dpt eval cfg.prototxt --weights q.h5" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out q.h5 --set compress.quantize.enabled=true
check "int8 row" grep -Eq "^int8 +[01]\.[0-9]{4} +676 " out.txt
reported=$(table_accuracy 'int8')
expect "eval int8" 0 "test_accuracy [0-9.]+ \(400 samples, int8\)" -- \
  "$dpt" eval cfg.prototxt --weights q.h5
check "eval int8 matches the table ($reported)" test "$(eval_accuracy)" = "$reported"

# Structured pruning then int8: OUT is the int8 model of the shrunk network, with its config; the
# pruned float32 model goes next to it.
expect "compress structured + int8" 0 "wrote sq.h5 \(int8\), the pruned float32 model sq_fp32.h5; evaluate with: dpt eval sq.prototxt --weights sq.h5" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out sq.h5 \
  --set compress.prune.sparsity=0.5 --set compress.prune.structure=STRUCTURED \
  --set 'compress.quantize={enabled: true calibration_samples: 200}'
check "structured + int8 row" grep -Eq "^structured 50% \+ int8 .* 340 +340 +50\.0% of neurons" out.txt
check "pruned float32 model and both configs" test -s sq_fp32.h5 -a -s sq_fp32.prototxt -a -s sq.prototxt
reported=$(table_accuracy 'structured 50% \+ int8')
expect "eval structured + int8" 0 "\(400 samples, int8\)" -- "$dpt" eval sq.prototxt --weights sq.h5
check "eval matches the table ($reported)" test "$(eval_accuracy)" = "$reported"
expect "bad calibration_samples" 2 "compress.quantize.calibration_samples: must be > 0 \(got 0\)" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out x.h5 \
  --set 'compress.quantize={enabled: true calibration_samples: 0}'

# Bad input: one line, the documented exit code.
prune=(--set compress.prune.sparsity=0.5)
expect "missing weights" 4 "^dpt compress: .*absent.h5" -- \
  "$dpt" compress cfg.prototxt --weights absent.h5 --out x.h5 "${prune[@]}"
expect "weights of another model" 4 "params/dense0/weight has shape \[32, 16\], the model expects \[8, 16\]" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out x.h5 "${prune[@]}" \
  --set 'model.layer[0].dense.units=8'
expect "sparsity 1.5" 2 "^dpt compress: config error: --set compress.prune.sparsity=1.5: compress.prune.sparsity: must be in \[0, 1\) \(got 1.5\)" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out x.h5 --set compress.prune.sparsity=1.5
expect "nothing to do" 2 "compress: nothing to do: set compress.prune.sparsity .* and/or compress.quantize.enabled" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out x.h5
expect "no --out" 2 "--out" -- "$dpt" compress cfg.prototxt --weights run/model.h5
expect "not a weights file" 4 "data.h5" -- \
  "$dpt" compress cfg.prototxt --weights data.h5 --out x.h5 "${prune[@]}"
touch file
expect "unwritable output" 7 "^dpt compress: I/O error: file/x.h5: cannot write it: file is not a writable directory" -- \
  "$dpt" compress cfg.prototxt --weights run/model.h5 --out file/x.h5 "${prune[@]}"
check "one line" test "$(wc -l <err.txt)" -eq 1
check "nothing written on errors" test ! -e x.h5

echo "compress_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
