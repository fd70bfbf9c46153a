#!/usr/bin/env bash
# Multi-node tests on one machine: two fake nodes in network namespaces (netns.sh) and mpirun
# started in node A, reaching node B through rsh_agent.sh, over TCP. Needs root; skips cleanly
# otherwise. Checks that dpt trained across the two nodes equals a single-process run, and that
# cutting the link mid-training makes both sides fail with dpt's collective timeout, in bounded
# time, with nothing left running.
# Usage: multinode_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "multinode: skipped: $*"
  exit 0
}

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: multinode_test.sh BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
[[ $(id -u) -eq 0 ]] || skip "needs root"
for tool in ip unshare timeout mpirun h5dump python3; do
  command -v "$tool" >/dev/null || skip "no $tool"
done
# Probe for namespaces, veths and bridges (missing in some containers).
probe="dpt-probe-$$"
if ! { ip netns add "$probe" && ip -n "$probe" link add p0 type veth peer name p1 &&
  ip -n "$probe" link add b0 type bridge; } 2>/dev/null; then
  ip netns delete "$probe" 2>/dev/null || true
  skip "ip netns, veth or bridge unavailable"
fi
ip netns delete "$probe"

source "$here/netns.sh"
source "$here/../test_lib.sh"
work=$(mktemp -d)
cleanup() {
  netns_down
  rm -rf "$work"
}
netns_up
trap cleanup EXIT
# Hostnames are shown to the program only; mpirun gets IPs and never resolves names.
export MN_NS_MAP="$NS_IP_A=$NS_A=dpt-a $NS_IP_B=$NS_B=dpt-b"
# Give up on unacknowledged TCP data after ~6 s instead of ~15 min. Without this, mpirun hangs
# after MPI_Abort during a partition: it waits for node B's daemon to confirm the kill.
netns_sysctl net.ipv4.tcp_retries2=4

# Open MPI's runtime and our wrappers; every other process in the namespaces belongs to the job.
runtime_comms=" mpirun orterun orted sh bash timeout unshare ip env "

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# job_pids: processes of the program under test in either namespace.
job_pids() {
  local pid comm
  for pid in $(netns_pids); do
    comm=$(ps -o comm= -p "$pid" 2>/dev/null) || continue
    [[ $runtime_comms == *" $comm "* ]] || echo "$pid"
  done
}

# mpirun_in_a TIMEOUT_S RANKS_PER_NS LOG COMMAND...: mpirun from node A, RANKS_PER_NS ranks on each
# node (ranks 0.. on A, the rest on B), output to LOG. Waits with `wait` so that traps run at once.
runs=0
mpirun_in_a() {
  local timeout_s=$1 per_ns=$2 log=$3
  shift 3
  local hosts="$NS_IP_A:$per_ns,$NS_IP_B:$per_ns"
  # Open MPI's own liveness check of its daemons (15 s idle, then 3 probes 1 s apart) is off by
  # default; after dpt's 5 s timeout aborts the job during a partition, it is what lets mpirun
  # give up on the unreachable node instead of waiting for TCP.
  local mpirun=(mpirun --host "$hosts" -np $((2 * per_ns)) --bind-to none
    --mca plm_rsh_agent "$here/rsh_agent.sh"
    --mca btl "tcp,self" --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0
    --mca oob_tcp_keepalive_time 15 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3)
  timeout -k 10 "$timeout_s" ip netns exec "$NS_A" unshare --uts \
    sh -c 'hostname dpt-a && exec "$@"' sh \
    env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "${mpirun[@]}" "$@" \
    >"$log" 2>&1 &
  local pid=$! rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

# mn_run TIMEOUT_S RANKS_PER_NS -- COMMAND...: runs COMMAND across the two nodes and returns
# mpirun's exit code (124 or 137: timed out). Sets MN_LOG (its output) and MN_ELAPSED_S.
mn_run() {
  local timeout_s=$1 per_ns=$2
  [[ $3 == -- ]] || { echo "usage: mn_run TIMEOUT_S RANKS_PER_NS -- COMMAND..." >&2; return 2; }
  shift 3
  runs=$((runs + 1))
  MN_LOG="$work/run$runs.log"
  local start rc=0
  start=$(now)
  mpirun_in_a "$timeout_s" "$per_ns" "$MN_LOG" "$@" || rc=$?
  MN_ELAPSED_S=$(secs "$start" "$(now)")
  netns_reap
  return "$rc"
}

# mn_run_and_cut CUT_AFTER_S TIMEOUT_S [RANKS_PER_NS] -- COMMAND...: like mn_run (1 rank per node
# by default), but cuts the link CUT_AFTER_S seconds after rank 0 says "training: " (after the
# start when it has not within 90 s). Returns mpirun's exit code and
# sets MN_LOG, MN_ELAPSED_S (start to mpirun's exit), MN_CUT_TO_EXIT_S (cut to mpirun's exit),
# MN_JOB_GONE_S (cut to the last process of COMMAND gone, or "never") and MN_LEFT_OVER (processes
# still in the namespaces 10 s after mpirun's exit, "" when none). When mpirun ends before the cut,
# MN_CUT_TO_EXIT_S and MN_JOB_GONE_S are "before-cut". Heals the link afterwards.
mn_run_and_cut() {
  local cut_after_s=$1 timeout_s=$2 per_ns=1
  shift 2
  if [[ $1 != -- ]]; then
    per_ns=$1
    shift
  fi
  [[ $1 == -- ]] || { echo "usage: mn_run_and_cut CUT_S TIMEOUT_S [PER_NS] -- COMMAND..." >&2; return 2; }
  shift
  runs=$((runs + 1))
  MN_LOG="$work/run$runs.log"
  local start cut pid rc=0
  start=$(now)
  mpirun_in_a "$timeout_s" "$per_ns" "$MN_LOG" "$@" &
  pid=$!
  # CUT_S counts from rank 0's "training: " line: a cut during start-up (MPI_Init has no
  # timeout), which a loaded machine can stretch past CUT_S, is not what the test is about.
  for _ in $(seq 900); do
    grep -q "training: " "$MN_LOG" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null && break
    sleep 0.1
  done
  sleep "$cut_after_s" &
  wait $!
  cut=$(now)
  MN_JOB_GONE_S=never
  if kill -0 "$pid" 2>/dev/null; then
    netns_cut
  else
    MN_JOB_GONE_S=before-cut
  fi
  while kill -0 "$pid" 2>/dev/null; do
    if [[ $MN_JOB_GONE_S == never && -z $(job_pids) ]]; then
      MN_JOB_GONE_S=$(secs "$cut" "$(now)")
    fi
    sleep 0.2
  done
  wait "$pid" || rc=$?
  local end
  end=$(now)
  MN_ELAPSED_S=$(secs "$start" "$end")
  MN_CUT_TO_EXIT_S=$(secs "$cut" "$end")
  if [[ $MN_JOB_GONE_S == before-cut ]]; then
    MN_CUT_TO_EXIT_S=before-cut
  elif [[ $MN_JOB_GONE_S == never && -z $(job_pids) ]]; then
    MN_JOB_GONE_S=$MN_CUT_TO_EXIT_S
  fi
  for _ in $(seq 50); do
    [[ -z $(netns_pids) ]] && break
    sleep 0.2
  done
  MN_LEFT_OVER=$(netns_pids | xargs -r ps -o comm= -p | sort | tr '\n' ' ')
  netns_reap
  netns_heal
  return "$rc"
}

passed=0
failed=0
shown_log=
# check NAME CONDITION-COMMAND...: counts a pass, or a failure (with the end of the last run's
# output, once per run).
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    if [[ $shown_log != "$MN_LOG" ]]; then
      tail -25 "$MN_LOG" | sed 's/^/  | /'
      shown_log=$MN_LOG
    fi
  fi
}
# le A B: A <= B, both numbers ("never" is not).
le() { [[ $1 =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

dpt="$build/dpt"
[[ -x $dpt ]] || { echo "multinode: no $dpt" >&2; exit 2; }
# Synthetic data through dpt's IDX import; absolute paths, as the ranks of node B start elsewhere.
synthetic_dataset "$dpt" "$work/data.h5" 480 4 4 7
small_mlp_config "$work/data.h5" 48 5 >"$work/cfg.prototxt"

# 1. The model trained across two nodes (1 and 2 ranks per node) is the single-process model.
"$dpt" train "$work/cfg.prototxt" --run-dir "$work/one" >"$work/one.log" 2>&1
for per_ns in 1 2; do
  rc=0
  mn_run 120 "$per_ns" -- "$dpt" train "$work/cfg.prototxt" --run-dir "$work/nodes$per_ns" || rc=$?
  echo "training on 2 nodes x $per_ns: exit $rc in ${MN_ELAPSED_S}s"
  check "2 nodes x $per_ns ranks: trained" \
    grep -q "world: $((2 * per_ns)) workers over mpi" "$MN_LOG"
  check "2 nodes x $per_ns ranks: the single-process model" \
    weights_match "$work/one/model.h5" "$work/nodes$per_ns/model.h5"
done

# 2. Cut the link mid-training: dpt's collective timeout (5 s) fires on both sides, every rank
# exits, mpirun ends with dpt's comm error code 6, and nothing is left running.
rc=0
mn_run_and_cut 3 120 -- "$dpt" train "$work/cfg.prototxt" --run-dir "$work/cut" \
  --set train.epochs=100000 || rc=$?
echo "partition: exit $rc, ${MN_CUT_TO_EXIT_S}s from cut to exit," \
  "job gone ${MN_JOB_GONE_S}s after cut, left over: '${MN_LEFT_OVER}'"
check "partition: exit 6 and nothing left" test "$rc" -eq 6 -a -z "$MN_LEFT_OVER"
check "partition: every rank gone within 2 x timeout" le "$MN_JOB_GONE_S" 10
check "partition: mpirun gone within 30 s" le "$MN_CUT_TO_EXIT_S" 30
check "partition: the timeout names the collective and the missing rank" \
  grep -Eq "rank [01]: dpt train: communication error: (step|evaluation after step|straggler report after step) [0-9]+: [a-z_]+ #[0-9]+ timed out after 5 s; ranks that did not arrive: [01]" "$MN_LOG"

echo "multinode: $passed passed, $failed failed (build dir $build)"
[[ $failed -eq 0 ]]
