#!/usr/bin/env bash
# Two fake nodes (network namespaces, tests/multinode/netns.sh) joined by a link limited to RATE
# with tc's token bucket; trains the Fashion-MNIST example on one rank per node with gradients
# summed in float32 and in bf16 (comm.reduce_dtype), twice each, and prints each run's throughput
# and per-rank waiting time. Needs root, build/dpt and data/ (scripts/quickstart.sh).
# Usage: scripts/bench_two_nodes.sh [RATE (default 1gbit)] [STEPS (default 100)]
set -u
cd "$(dirname "$0")/.."
here=$PWD/tests/multinode
rate=${1:-1gbit}
steps=${2:-100}
source "$here/netns.sh"
netns_up
export MN_NS_MAP="$NS_IP_A=$NS_A=dpt-a $NS_IP_B=$NS_B=dpt-b"
for port in va vb; do
  ip netns exec "$NS_BR" tc qdisc add dev "$port" root tbf rate "$rate" burst 256kb latency 50ms
done
out=$(mktemp -d)
for dtype in REDUCE_FLOAT32 REDUCE_BF16 REDUCE_FLOAT32 REDUCE_BF16; do
  rm -rf "$out/run"
  timeout 600 ip netns exec "$NS_A" unshare --uts sh -c 'hostname dpt-a && exec "$@"' sh \
    env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --host "$NS_IP_A:1,$NS_IP_B:1" -np 2 --bind-to none \
    --mca plm_rsh_agent "$here/rsh_agent.sh" --mca btl tcp,self \
    --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 \
    "$PWD/build/dpt" train "$PWD/examples/fashion_mnist/mlp.prototxt" --run-dir "$out/run" \
    --set train.max_steps="$steps" --set train.log_every_steps="$steps" \
    --set comm.reduce_dtype="$dtype" >"$out/log" 2>&1
  echo "$dtype over $rate: $(grep -Eo '[0-9]+ samples/s' "$out/log" | tail -1)," \
    "waiting ms per step by rank: $(awk '/^ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$/ {print $4}' \
      "$out/log" | tr '\n' ' ')"
done
rm -rf "$out"
netns_down
