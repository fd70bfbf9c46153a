#!/usr/bin/env bash
# dpt bench report end to end (README "Evaluation report"): one process and 2 ranks under mpirun
# on a tiny model; every section is present in report.txt/.csv/.json, the CSV and JSON hold the
# same rows, a row without a measurement says n/a and why (never a number), the all-reduce rows
# appear only with more than one worker, --accuracy-epochs trains both precisions, bad arguments
# exit 2. Timings are not asserted.
# Usage: bench_report_cli_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

synthetic_dataset "$dpt" data.h5 400 4 4 3
small_mlp_config data.h5 16 60 >cfg.prototxt
quick=(--steps 4 --warmup 1 --inference-seconds 0)

expect "report, one process" 0 "wrote one/report.txt" \
  -- "$dpt" bench report cfg.prototxt --out one "${quick[@]}"
for section in compute training "power and energy" communication accuracy inference; do
  expect "section $section" 0 "^$section\$" -- cat one/report.txt
done
expect "one worker: all-reduce n/a with the reason" 0 "all-reduce +n/a +one worker" \
  -- cat one/report.txt
expect "accuracy n/a without --accuracy-epochs" 0 "^accuracy,.*,,,not measured" \
  -- cat one/report.csv

# The CSV and the JSON rows agree: same count, same metrics, n/a rows have null values and notes.
expect "CSV and JSON hold the same rows" 0 "^same [0-9]+ rows$" -- python3 - one <<'PY'
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/report.csv")))
j = json.load(open(f"{d}/report.json"))["rows"]
assert len(rows) == len(j) > 20, (len(rows), len(j))
for c, r in zip(rows, j):
    assert c["metric"] == r["metric"] and c["section"] == r["section"], (c, r)
    if r["value"] is None:
        assert c["value"] == "" and r["note"], r
    else:
        assert abs(float(c["value"]) - r["value"]) <= 1e-9 * abs(r["value"]), (c, r)
units = {r["metric"]: r["unit"] for r in j}
assert units["FMA peak (measured)"] == "GFLOP/s" and units["float32 step p50"] == "ms", units
print(f"same {len(rows)} rows")
PY

expect "report under mpirun -np 2" 0 "wrote two/report.txt" \
  -- mpirun --oversubscribe -np 2 "$dpt" bench report cfg.prototxt --out two "${quick[@]}"
expect "2 workers: all-reduce rows per size" 0 "all-reduce 4 KiB +[0-9.]+ us +algbw .* 2 ranks, mpi" \
  -- cat two/report.txt
expect "only rank 0 prints the summary" 0 "^1$" -- grep -c "^dpt bench report:" two/report.txt

expect "accuracy epochs train float32 and bf16" 0 "bf16 - float32|fp32 vs bf16 test accuracy +n/a +the CPU has no bf16" \
  -- "$dpt" bench report cfg.prototxt --out acc "${quick[@]}" --accuracy-epochs 1
expect "bad --steps" 2 "--steps must be > 0" \
  -- "$dpt" bench report cfg.prototxt --out bad --steps 0
expect "missing config" 2 "" -- "$dpt" bench report missing.prototxt --out bad

echo "bench report CLI: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
