#!/usr/bin/env bash
# rsh agent for `mpirun --mca plm_rsh_agent`: runs a command on a fake node, i.e. in the network
# namespace that owns the node's IP (see netns.sh). Called as ssh would be:
#   rsh_agent.sh [options] HOST command...
# MN_NS_MAP (set by the test script) maps IPs to namespaces and host names:
#   "198.18.0.1=dpt-a-123=dpt-a 198.18.0.2=dpt-b-123=dpt-b"
# The command runs in a fresh UTS namespace with that host name, so each fake node has its own.
set -euo pipefail
while [[ $# -gt 0 && $1 == -* ]]; do shift; done
if [[ $# -lt 2 ]]; then
  echo "usage: rsh_agent.sh [options] HOST command..." >&2
  exit 255
fi
host=$1
shift
ns=
name=
for entry in ${MN_NS_MAP:-}; do
  IFS="=" read -r ip entry_ns entry_name <<<"$entry"
  if [[ $ip == "$host" ]]; then
    ns=$entry_ns
    name=$entry_name
  fi
done
if [[ -z $ns ]]; then
  echo "rsh_agent.sh: unknown host '$host' (MN_NS_MAP='${MN_NS_MAP:-}')" >&2
  exit 255
fi
# Like ssh, hand the words to a shell as one command line.
# shellcheck disable=SC2016  # $1 and $* belong to the inner shells.
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$1" && shift && exec sh -c "$*"' sh "$name" "$@"
