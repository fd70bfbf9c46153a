# Two fake nodes in network namespaces, for multi-node tests on one machine. Source it; needs root
# and `ip netns`. Nothing in the host's namespace is touched: the bridge lives in a third namespace.
#
#   NS_A (198.18.0.1/24 on eth0) --- [NS_BR: bridge br0, ports va, vb] --- NS_B (198.18.0.2/24)
#
# netns_up     create the namespaces (names unique per shell: dpt-a-$$, dpt-b-$$, dpt-br-$$) and
#              install `trap netns_down EXIT INT TERM HUP`. Sets NS_A, NS_B, NS_BR, NS_IP_A, NS_IP_B.
# netns_down   delete them; idempotent, safe to call at any time.
# netns_cut    partition: set B's bridge port down. B's eth0 loses carrier, A's eth0 stays up, and
#              packets between them are dropped silently (no RST, no ICMP).
# netns_heal   undo netns_cut; returns once A reaches B again.
# netns_sysctl KEY=VALUE...   set sysctls in both node namespaces (net.* sysctls are per namespace).
# netns_pids   print the ids of all processes in the node namespaces.
# netns_reap   kill all processes in the node namespaces and wait until they are gone.
# netns_up replaces the EXIT, INT, TERM and HUP traps. A caller with its own cleanup sets its EXIT
# trap after netns_up and calls netns_down from it.

NS_A="dpt-a-$$"
NS_B="dpt-b-$$"
NS_BR="dpt-br-$$"
NS_IP_A=198.18.0.1
NS_IP_B=198.18.0.2

netns_down() {
  local ns
  for ns in "$NS_A" "$NS_B" "$NS_BR"; do
    [[ -e /run/netns/$ns ]] || continue
    netns_kill "$ns"
    # Deleting a namespace deletes the interfaces inside it, and a veth dies with either end.
    ip netns delete "$ns" 2>/dev/null || true
  done
}

netns_reap() {
  local ns
  for ns in "$NS_A" "$NS_B"; do
    [[ -e /run/netns/$ns ]] && netns_kill "$ns"
  done
  return 0
}

# netns_kill NS: SIGKILL every process in NS (all started by this test) and wait until none is left.
netns_kill() {
  for _ in $(seq 50); do
    [[ -z $(ip netns pids "$1" 2>/dev/null) ]] && return 0
    ip netns pids "$1" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    sleep 0.1
  done
  echo "netns: processes left in $1: $(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')" >&2
}

# netns_setup_side NS PORT IP: a veth pair with PORT on the bridge and eth0 (with IP) inside NS.
netns_setup_side() {
  local ns=$1 port=$2 addr=$3
  ip -n "$NS_BR" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$NS_BR" link set "$port" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
}

netns_up() {
  trap 'netns_down' EXIT
  trap 'netns_down; exit 130' INT
  trap 'netns_down; exit 143' TERM
  trap 'netns_down; exit 129' HUP
  netns_down
  ip netns add "$NS_BR"
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  local ns
  for ns in "$NS_A" "$NS_B"; do
    # IPv4 only: no link-local IPv6 addresses for Open MPI to try.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip -n "$NS_BR" link add br0 type bridge
  ip -n "$NS_BR" link set br0 up
  ip -n "$NS_BR" link set lo up
  netns_setup_side "$NS_A" va "$NS_IP_A"
  netns_setup_side "$NS_B" vb "$NS_IP_B"
  netns_wait_reachable
}

netns_wait_reachable() {
  for _ in $(seq 20); do
    netns_reachable && return 0
    sleep 0.25
  done
  echo "netns: $NS_IP_A cannot reach $NS_IP_B" >&2
  return 1
}

# netns_reachable: true when A reaches B over TCP. Port 9 has no listener, so a reachable B answers
# at once with a reset ("Connection refused"); a cut link gives a timeout instead.
netns_reachable() {
  local err
  err=$(ip netns exec "$NS_A" timeout 2 bash -c "echo >/dev/tcp/$NS_IP_B/9" 2>&1) && return 0
  [[ $err == *"Connection refused"* ]]
}

netns_cut() {
  ip -n "$NS_BR" link set vb down
}

netns_heal() {
  ip -n "$NS_BR" link set vb up
  netns_wait_reachable
}

netns_sysctl() {
  local ns
  for ns in "$NS_A" "$NS_B"; do
    ip netns exec "$ns" sysctl -qw "$@"
  done
}

netns_pids() {
  local ns
  for ns in "$NS_A" "$NS_B"; do
    [[ -e /run/netns/$ns ]] && ip netns pids "$ns"
  done
  return 0
}
