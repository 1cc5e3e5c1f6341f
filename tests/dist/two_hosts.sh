#!/usr/bin/env bash
# Two hosts on one machine: two network namespaces joined by a veth pair, each a "host" with its
# own address, and mpirun in the first launching one rank in each over TCP. Open MPI starts the
# remote daemon through its rsh agent, here a script that enters the other namespace (no ssh).
#
#   two_hosts.sh up [RATE]     make the namespaces (RATE, e.g. 1gbit: shape both directions of
#                              the link with a token bucket), print their names
#   two_hosts.sh run ARGS...   mpirun ARGS... across them (one rank per host, --mca btl tcp,self)
#   two_hosts.sh down          remove them
#   two_hosts.sh test CLI MPIEXEC   the suite's check: up, the bits of a 2-host run against one
#                              process with --micro-batches 2, down (exit 77: cannot make
#                              namespaces here, e.g. not root)
set -u
# Namespace and interface names start with the prefix (CONVNET_NETNS_PREFIX, default "convnet";
# the test takes its own), and the agent and host file lie in a folder named after it.
if [[ ${1:-} == test ]]; then export CONVNET_NETNS_PREFIX=cvt$$; fi
prefix=${CONVNET_NETNS_PREFIX:-convnet}
state=${TMPDIR:-/tmp}/$prefix-two-hosts
a_ip=10.213.0.1 b_ip=10.213.0.2

up() {
  local rate=${1:-}
  mkdir -m 700 "$state" || { echo "two_hosts.sh: $state exists: already up?" >&2; return 1; }
  ip netns add "${prefix}a" || { rm -rf "$state"; return 1; }
  ip netns add "${prefix}b" || { down; return 1; }
  ip link add "${prefix}va" type veth peer name "${prefix}vb" || { down; return 1; }
  ip link set "${prefix}va" netns "${prefix}a"
  ip link set "${prefix}vb" netns "${prefix}b"
  ip -n "${prefix}a" addr add $a_ip/24 dev "${prefix}va"
  ip -n "${prefix}b" addr add $b_ip/24 dev "${prefix}vb"
  for side in a b; do
    ip -n "$prefix$side" link set lo up
    ip -n "$prefix$side" link set "${prefix}v$side" up
    if [[ -n $rate ]]; then
      ip netns exec "$prefix$side" tc qdisc add dev "${prefix}v$side" root tbf rate "$rate" \
        burst 256kb latency 50ms
    fi
  done
  # The rsh agent: Open MPI runs "AGENT HOST COMMAND..." to start its daemon on HOST.
  cat >"$state/agent" <<EOF
#!/bin/sh
host=\$1; shift
case \$host in
  $a_ip) ns=${prefix}a ;;
  $b_ip) ns=${prefix}b ;;
  *) echo "convnet two-host agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
EOF
  chmod +x "$state/agent"
  printf '%s slots=1\n%s slots=1\n' $a_ip $b_ip >"$state/hosts"
  echo "hosts ${prefix}a ($a_ip) and ${prefix}b ($b_ip)${rate:+, link shaped to $rate}"
}

run() {
  ip netns exec "${prefix}a" "$1" --allow-run-as-root --hostfile "$state/hosts" \
    --mca plm_rsh_agent "$state/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.213.0.0/24 --mca oob_tcp_if_include 10.213.0.0/24 \
    --bind-to none "${@:2}"
}

down() {
  ip netns del "${prefix}a" 2>/dev/null
  ip netns del "${prefix}b" 2>/dev/null
  rm -rf "$state"
  return 0
}

case ${1:-} in
up) shift; up "$@" ;;
run) shift; run "$@" ;;
down) down ;;
test)
  cli=$2 mpiexec=$3
  if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
    echo "SKIP: two hosts need root and iproute2 (ip netns)"
    exit 77
  fi
  tmp=$(mktemp -d)
  trap 'down; rm -rf "$tmp"' EXIT
  if ! up >/dev/null 2>"$tmp/up.err"; then
    echo "SKIP: cannot make network namespaces here: $(head -1 "$tmp/up.err")"
    exit 77
  fi
  flags=(--model "$(dirname "$0")/bn_dropout.txt" --seed 3 --threads 1 --train-limit 460
    --test-limit 100 --epochs 1 --batch 23 --crop-padding 2 --flip --optimizer adam --lr 0.01
    --json)
  # One rank in each namespace: each sees its own host's address.
  where=$(timeout 120 bash "$0" run "$mpiexec" -np 2 sh -c \
    'echo "rank $OMPI_COMM_WORLD_RANK: $(ip -o -4 addr show | grep -o "10\.213\.0\.[12]")"' | sort)
  if [[ $where != $'rank 0: 10.213.0.1\nrank 1: 10.213.0.2' ]]; then
    echo "FAIL: the ranks are not one per host: $where"
    exit 1
  fi
  "$cli" train "${flags[@]}" --micro-batches 2 --save "$tmp/one.st" >"$tmp/one.out" 2>&1 ||
    { echo "FAIL: the one-process run"; cat "$tmp/one.out"; exit 1; }
  timeout 300 bash "$0" run "$mpiexec" -np 2 "$cli" train "${flags[@]}" --save "$tmp/two.st" \
    >"$tmp/two.out" 2>"$tmp/two.err"
  rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: mpirun across the two hosts: exit $rc"
    cat "$tmp/two.err"
    exit 1
  fi
  if ! cmp -s "$tmp/one.st" "$tmp/two.st"; then
    echo "FAIL: the two-host run's checkpoint differs from --micro-batches 2's"
    exit 1
  fi
  if ! diff <(sed -E 's/"seconds": [0-9.]+, "images_per_s": [0-9.]+//' "$tmp/one.out" | grep '^{') \
    <(sed -E 's/"seconds": [0-9.]+, "images_per_s": [0-9.]+//' "$tmp/two.out" | grep '^{'); then
    echo "FAIL: the two-host run printed other figures"
    exit 1
  fi
  echo "two hosts over TCP: the bits of --micro-batches 2"
  ;;
*)
  echo "usage: two_hosts.sh {up [RATE]|run MPIEXEC ARGS...|down|test CLI MPIEXEC}" >&2
  exit 2
  ;;
esac
