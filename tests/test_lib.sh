# Sourced by the shell tests: synthetic datasets, and comparing two HDF5 weight files (h5dump).

# synthetic_dataset DPT OUT N SIDE CLASSES SEED: N images of SIDE x SIDE pixels whose label
# brightens every CLASSES-th pixel (something to learn), written as IDX and imported to OUT.
synthetic_dataset() {
  local dpt=$1 out=$2 n=$3 side=$4 classes=$5 seed=$6
  python3 - "$out" "$n" "$side" "$classes" "$seed" <<'PY'
import random, struct, sys
out, n, side, classes, seed = sys.argv[1], *map(int, sys.argv[2:])
random.seed(seed)
d = side * side
labels = [random.randrange(classes) for _ in range(n)]
pixels = bytearray()
for y in labels:
    pixels += bytes(min(255, random.randrange(130) + (95 if j % classes == y else 0))
                    for j in range(d))
open(out + ".images.idx", "wb").write(struct.pack(">iiii", 0x803, n, side, side) + pixels)
open(out + ".labels.idx", "wb").write(struct.pack(">ii", 0x801, n) + bytes(labels))
PY
  "$dpt" data import-idx --images "$out.images.idx" --labels "$out.labels.idx" --out "$out" \
    >/dev/null
}

# dump_weights FILE: every parameter, one value per line, to 9 significant digits.
dump_weights() {
  local values="$1.values"
  h5ls -r "$1" | awk '$2 == "Dataset" {print $1}' | sort | while read -r name; do
    h5dump -y -w 0 -m '%.9g' -o "$values" -d "$name" "$1" >/dev/null
    tr ',' '\n' <"$values" | awk 'NF {print $1}'
  done
  rm -f "$values"
}

# small_mlp_config DATA BATCH TIMEOUT_S: a 16-32-4 MLP with dropout on DATA (16 features, 4
# classes), Adam, 3 epochs, tiny gradient buckets (several all-reduces per step), 1 thread,
# float32 matmuls on every CPU (runs are compared across world sizes at float32 precision).
small_mlp_config() {
  cat <<CFG
model {
  input_size: 16
  layer { dense { units: 32 } }
  layer { activation { kind: TANH } }
  layer { dropout { rate: 0.1 } }
  layer { dense { units: 4 } }
}
data { train_path: "$1" test_path: "$1" input_scale: 0.004 }
optimizer { lr: 0.01 adam {} }
train { batch_size: $2 epochs: 3 log_every_steps: 10 }
comm { timeout_s: $3 bucket_mb: 0.001 }
device { threads: 1 precision: FP32 }
CFG
}

# weights_match A B: every parameter within 2e-5 * max(1, |a|): N ranks sum fp32 values in
# another order than 1 process (see README "Data parallelism").
weights_match() {
  paste <(dump_weights "$1") <(dump_weights "$2") | awk '
    { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1; if (m < 1) m = 1
      if (d / m > worst) worst = d / m; n++ }
    END { printf "  %d values, worst relative difference %.3g\n", n, worst
          exit !(n > 500 && worst < 2e-5) }'
}

# expect NAME CODE PATTERN -- COMMAND...: runs COMMAND (stdout in out.txt, stderr in err.txt) and
# counts it in $passed when it exits with CODE and PATTERN (extended regex) is in either, else in
# $failed with the tail of both.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  "$@" >out.txt 2>err.txt
  local got=$?
  if [[ $got -eq $code ]] && grep -Eq -- "$pattern" out.txt err.txt; then
    passed=$((passed + 1))
    echo "ok $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $got (expected $code), pattern /$pattern/"
    sed 's/^/  stdout: /' out.txt | tail -8
    sed 's/^/  stderr: /' err.txt | tail -5
  fi
}

# begin_test DPT: the common start of the shell tests. Sets $dpt (absolute path of the binary),
# makes a fresh working directory ($work, removed on exit) and enters it, lets mpirun run as
# root, sets $mpi (mpirun over shared memory and TCP, oversubscribed) and zeroes $passed/$failed.
begin_test() {
  dpt=$(realpath "$1")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work" || exit 1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mpi=(mpirun --oversubscribe --mca btl self,vader,tcp)
  passed=0
  failed=0
}

# check NAME COMMAND...: counts a check that passes when COMMAND succeeds; on failure prints the
# tail of out.txt.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/  | /' out.txt 2>/dev/null | tail -8
  fi
}

# pass / fail MESSAGE: count a check; fail prints MESSAGE and the tail of out.txt.
pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL $*"
  sed 's/^/  | /' out.txt | tail -8
}

# rank_pid RANK PATTERN: the pid of this test's process of MPI rank RANK whose command line
# matches PATTERN (pgrep -f), or nothing.
rank_pid() {
  local pid
  for pid in $(pgrep -f "$2"); do
    [[ $(readlink "/proc/$pid/cwd") == "$work" ]] &&
      grep -qz "^OMPI_COMM_WORLD_RANK=$1\$" "/proc/$pid/environ" 2>/dev/null && echo "$pid" && return
  done
}

# signal_rank1 SIGNAL PATTERN [TRAIN ARGS...]: starts 2-rank training in run directory
# s<SIGNAL>, sends SIGNAL to rank 1 once it trains, and checks that the job ends non-zero within
# 30 s of the signal with PATTERN (extended regex) in its output. The wait for training has no
# bound of its own (start-up on a loaded machine takes what it takes; the job's 60 s timeout
# bounds it): a rank stopped before it trains would hang in MPI's start-up, which has no
# timeout. The collective timeout is 4 s, and no checkpoints are saved: a save's fsync on a
# loaded machine could outlast 4 s while rank 1 waits, failing the job before the signal. A
# stopped rank is killed afterwards.
signal_rank1() {
  local signal=$1 pattern=$2 start victim="" job code took
  shift 2
  timeout 60 "${mpi[@]}" -np 2 "$dpt" train cfg.prototxt --run-dir "s$signal" \
    --set train.epochs=100000 --set comm.timeout_s=4 --set checkpoint.every_epochs=0 \
    "$@" >out.txt 2>&1 &
  job=$!
  while kill -0 $job 2>/dev/null; do
    victim=$(rank_pid 1 "dpt train cfg.prototxt --run-dir s$signal")
    [[ -n $victim ]] && grep -q "epoch 1 step" out.txt && break
    victim=""
    sleep 0.1
  done
  start=$SECONDS
  [[ -n $victim ]] && kill -s "$signal" "$victim" 2>/dev/null
  wait $job
  code=$?
  [[ $signal == STOP && -n $victim ]] && kill -9 "$victim" 2>/dev/null
  took=$((SECONDS - start))
  if [[ -n $victim && $code -ne 0 && $took -le 30 ]] && grep -Eq "$pattern" out.txt; then
    echo "ok SIG$signal of rank 1: exit $code ${took}s after the signal"
    pass
  else
    fail "SIG$signal of rank 1 (pid '$victim'): exit $code ${took}s after the signal, pattern /$pattern/"
  fi
}
