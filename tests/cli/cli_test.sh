#!/usr/bin/env bash
# End-to-end tests of the `dpt` binary: a tiny import -> train -> eval run, and bad input of every
# kind giving one clear line and the documented exit code (README "Exit codes"), never a crash.
# Usage: cli_test.sh path/to/dpt
set -u
source "$(dirname "$0")/../test_lib.sh"
begin_test "$1"

# A tiny IDX dataset: 40 images of 2x2 pixels, class = (brightest pixel), 4 classes.
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
{
  printf '\x00\x00\x08\x03'; be32 40; be32 2; be32 2
  for i in $(seq 0 39); do
    c=$((i % 4))
    for p in 0 1 2 3; do
      if [[ $p -eq $c ]]; then printf '\xf0'; else printf "\\x$(printf %02x $((i * 7 % 40)))"; fi
    done
  done
} >images.idx
{
  printf '\x00\x00\x08\x01'; be32 40
  for i in $(seq 0 39); do printf "\\x$(printf %02x $((i % 4)))"; done
} >labels.idx
head -c 20 images.idx >truncated.idx
echo "not hdf5" >text.h5

cat >tiny.prototxt <<'CFG'
model {
  input_size: 4
  layer { dense { units: 16 } }
  layer { activation { kind: TANH } }
  layer { dense { units: 4 } }
}
data { train_path: "tiny.h5" test_path: "tiny.h5" }
optimizer { lr: 0.05 adam {} }
train { batch_size: 8 epochs: 30 log_every_steps: 20 }
device { precision: FP32 }
CFG
printf 'model {\n  input_size: 4\n  layer { dense { units: 4 }\n' >syntax.prototxt
printf 'model {\n  input_size: 4\n  layers { dense { units: 4 } }\n}\n' >unknown_field.prototxt
printf 'model { input_size: 4 layer { dense { units: 4 } } }\noptimizer { lr: -1 }\ndata { train_path: "tiny.h5" }\n' >bad_lr.prototxt

expect "no subcommand" 2 "required|Usage" -- "$dpt"
expect "unknown option" 2 "extra|not expected|Usage|following argument" -- "$dpt" train tiny.prototxt --run-dir r --bogus
expect "version" 0 "^dpt [0-9]" -- "$dpt" version
expect "devices" 0 "threads/worker" -- "$dpt" devices
expect "devices --json" 0 '"recommendation"' -- "$dpt" devices --json
python3 -c 'import json, sys; json.load(open("out.txt"))' && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: dpt devices --json is not JSON"; }
# The GPU probe answers on every machine: CUDA versions, then GPUs or why none is usable.
expect "devices GPUs" 0 "CUDA +driver [0-9a-z.]+, runtime [0-9a-z.]+" -- "$dpt" devices

expect "import" 0 "wrote 40 samples to tiny.h5" -- \
  "$dpt" data import-idx --images images.idx --labels labels.idx --out tiny.h5
expect "import truncated" 3 "truncated.idx" -- \
  "$dpt" data import-idx --images truncated.idx --labels labels.idx --out t.h5
expect "import missing file" 3 "absent.idx" -- \
  "$dpt" data import-idx --images absent.idx --labels labels.idx --out t.h5
expect "import label out of range" 3 "labels.idx.*3" -- \
  "$dpt" data import-idx --images images.idx --labels labels.idx --out t.h5 --num-classes 3
[[ ! -e t.h5 ]] || { failed=$((failed + 1)); echo "FAIL: failed import left t.h5 behind"; }

expect "train" 0 "test_accuracy 1\.0000" -- "$dpt" train tiny.prototxt --run-dir run
grep -q "^precision: float32 (FP32 requested)$" err.txt && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: train did not log its precision"; }
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  expect "train in bf16" 0 "precision: bf16 matmuls.*BF16 requested" -- \
    "$dpt" train tiny.prototxt --run-dir run_bf16 --set device.precision=BF16
else
  expect "bf16 without the hardware" 2 "device.precision: BF16 requested, but the CPU lists neither" -- \
    "$dpt" train tiny.prototxt --run-dir run_bf16 --set device.precision=BF16
fi
# Without a usable GPU the reason is named; with one, the run trains on cuda:0.
if "$dpt" devices --json | grep -qE '"usable": *true'; then
  expect "device.kind CUDA" 0 "device: cuda:0 \\(" -- \
    "$dpt" train tiny.prototxt --run-dir run_cuda --set device.kind=CUDA
else
  expect "device.kind CUDA" 2 "device.kind: CUDA requested, but no GPU is usable" -- \
    "$dpt" train tiny.prototxt --run-dir run_cuda --set device.kind=CUDA
fi
# The nccl backend needs workers that own CUDA devices: on the CPU it is a config error by name.
expect "comm.backend nccl on the CPU" 2 'comm.backend: "nccl"' -- \
  "$dpt" train tiny.prototxt --run-dir run_nccl --set device.kind=CPU --set comm.backend=nccl
expect "comm.backend unknown" 2 'comm.backend: must be "auto", "local", "mpi", "plugin" or "nccl"' -- \
  "$dpt" train tiny.prototxt --run-dir run_nccl --set comm.backend=bogus
expect "fp16 on the CPU" 2 "device.precision: fp16 needs a CUDA device: set device.kind: CUDA" -- \
  "$dpt" train tiny.prototxt --run-dir run_fp16 --set device.precision=FP16
for f in run/config.prototxt run/metrics.jsonl run/model.h5 run/checkpoints/step_000150.h5; do
  [[ -s $f ]] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: missing $f"; }
done
ls run/tensorboard/events.out.tfevents.* >/dev/null 2>&1 && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: no TensorBoard event file"; }
expect "report" 0 "report: run/report.html" -- "$dpt" report run
grep -q "<svg" run/report.html && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: report has no plots"; }
expect "report of a missing run" 3 "absent_run: no such run directory" -- "$dpt" report absent_run
expect "trace merge without traces" 3 "trace \{ enabled: true \}" -- "$dpt" trace merge run
# The timeline files are strict JSON (Python's json rejects a trailing comma before "]").
expect "train with a trace" 0 "test_accuracy" -- \
  "$dpt" train tiny.prototxt --run-dir run_trace --set trace.enabled=true --set train.epochs=2
expect "trace merge" 0 "wrote [0-9]+ events to run_trace/trace/merged.json" -- \
  "$dpt" trace merge run_trace
python3 - run_trace/trace/rank_0.json run_trace/trace/merged.json <<'PY' &&
import json, sys
rank = json.load(open(sys.argv[1]))
assert any(e["ph"] == "X" and e["cat"] == "step" for e in rank), "no step spans"
assert json.load(open(sys.argv[2]))["traceEvents"], "empty merge"
PY
  passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: trace files are not strict JSON"; }
expect "train again into a run with checkpoints" 2 "pass --resume auto" -- \
  "$dpt" train tiny.prototxt --run-dir run
expect "resume a finished run" 0 "nothing to train: the run was already complete at step 150" -- \
  "$dpt" train tiny.prototxt --run-dir run --resume auto
expect "resume from a file that is not a checkpoint" 4 "text.h5" -- \
  "$dpt" train tiny.prototxt --run-dir run --resume text.h5
expect "metrics records" 0 '"kind":"eval"' -- grep -h '"test_accuracy"' run/metrics.jsonl
expect "eval" 0 "test_accuracy 1\.0000 \(40 samples\)" -- \
  "$dpt" eval tiny.prototxt --weights run/model.h5
expect "eval other architecture" 4 "model.h5: params/dense0/weight has shape \[16, 4\], the model expects \[8, 4\]" -- \
  "$dpt" eval tiny.prototxt --weights run/model.h5 --set model.layer[0].dense.units=8
expect "eval missing weights" 4 "absent.h5" -- "$dpt" eval tiny.prototxt --weights absent.h5

expect "config syntax" 2 "syntax.prototxt:4:[0-9]+: " -- "$dpt" train syntax.prototxt --run-dir r
expect "config unknown field" 2 "unknown_field.prototxt:3:[0-9]+: .*no field named \"layers\"" -- \
  "$dpt" train unknown_field.prototxt --run-dir r
expect "config invalid value" 2 "bad_lr.prototxt:2:[0-9]+: optimizer.lr: must be > 0" -- \
  "$dpt" train bad_lr.prototxt --run-dir r
expect "config missing" 2 "absent.prototxt" -- "$dpt" train absent.prototxt --run-dir r
expect "bad --set" 2 "--set train.bogus=1" -- "$dpt" train tiny.prototxt --run-dir r --set train.bogus=1
expect "input size mismatch" 2 "model.input_size: 5 does not match tiny.h5" -- \
  "$dpt" train tiny.prototxt --run-dir r --set model.input_size=5
expect "missing data" 3 "absent.h5" -- \
  "$dpt" train tiny.prototxt --run-dir r --set data.train_path=absent.h5
expect "not hdf5" 3 "text.h5: not an HDF5 file" -- \
  "$dpt" train tiny.prototxt --run-dir r --set data.train_path=text.h5
expect "divergence" 5 "step [0-9]+ \(epoch [0-9]+\): (training loss|gradient norm) is" -- \
  "$dpt" train tiny.prototxt --run-dir r --set optimizer.lr=1e30 --set 'optimizer.sgd={}' \
  --set model.layer[1].activation.kind=RELU
touch file
expect "unwritable run dir" 7 "file/run" -- "$dpt" train tiny.prototxt --run-dir file/run

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
