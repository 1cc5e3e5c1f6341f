#!/usr/bin/env bash
# The overlapped reduction on a slow link: two namespace hosts (tests/dist/two_hosts.sh) joined
# by a link shaped to RATE (default 1gbit), `convnet train` on 2 ranks x 1 thread with
# --allreduce ordered and overlap, alternating, ROUNDS times (default 3); prints each run's
# images/s and the share of the training time the steps waited for the gradients' sum, then
# bench_comm's bandwidths on the same link. Needs root, iproute2 and an MPI build.
#   bench/overlap_two_hosts.sh [RATE [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1gbit} rounds=${2:-3}
export CONVNET_NETNS_PREFIX=cvbench$$
hosts=tests/dist/two_hosts.sh
bash $hosts up "$rate"
trap 'bash $hosts down' EXIT
for model in vgg-small resnet-small; do
  for round in $(seq "$rounds"); do
    for mode in ordered overlap; do
      line=$(bash $hosts run mpiexec -np 2 build/convnet train --model "$model" --threads 1 \
        --batch 64 --epochs 1 --train-limit 3200 --test-limit 64 --schedule constant \
        --allreduce "$mode" 2>&1 | grep -E "^epoch" | tr '\n' ' ')
      ips=$(grep -oE '[0-9]+ images/s' <<<"$line" | cut -d' ' -f1)
      waited=$(grep -oE '\([0-9.]+% of the training time' <<<"$line" | grep -oE '[0-9.]+')
      echo "$model round $round $mode: $ips images/s, waited $waited% of the training time"
    done
  done
done
bash $hosts run mpiexec -np 2 build/bench_comm 1.7 25
