#!/usr/bin/env bash
# Data-parallel training under mpirun against its single-process reference:
#   bits     `mpirun -np N convnet train --batch B` writes the same checkpoint bytes and prints the
#            same figures as `convnet train --batch B --micro-batches N`, for N = 1..4, a batch
#            that N does not divide and one it does, BatchNorm, Dropout, augmentation, Adam and a
#            schedule; for batches smaller than N (ranks with no samples); for a residual network;
#            for regression (real-valued targets) and an autoencoder (the input as the target).
#   resume   a checkpoint saved by 2 ranks, resumed by 3, gives the bits of one process resuming
#            it with --micro-batches 3; resumed by 2, those of the unbroken 2-rank run.
#   faults   a start-up mismatch is one error before training; a divergence is the same error
#            on every rank and keeps the last good state (the bits of the micro-batch run's, and
#            resumed mid-epoch, the bits of the micro-batch run's continuation); a
#            rank killed with SIGKILL ends the job non-zero within 60 s with the last checkpoint
#            intact; a rank that stops answering trips --comm-timeout.
#   overlap  --allreduce overlap's weights after 5 steps within 1e-5 of the ordered sum's (and,
#            as both sum in rank order, its bits).
# Usage: test_mpi.sh CLI MPIEXEC MODEL_DIR {bits|resume|faults|overlap}; exits 77 (skipped)
# without MPI.
set -u
cli=$1 mpiexec=$2 models=$3 part=$4
if [[ ! -x $mpiexec ]]; then
  echo "SKIP: no mpiexec ($mpiexec)"
  exit 77
fi
# CI runs as root, on 2 cores: up to 4 ranks share them.
mpi=("$mpiexec" --allow-run-as-root --oversubscribe --bind-to none)
tmp=$(mktemp -d)
trap 'pkill -KILL -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [[ -n ${2:-} && -f $2 ]] && sed 's/^/    /' "$2" | head -20
}
# rank1_of CHECKPOINT: once a run saving to CHECKPOINT has written it, the pid of its rank 1
# (empty if none appears within 60 s).
rank1_of() {
  for _ in $(seq 300); do [[ -f $1 ]] && break; sleep 0.2; done
  grep -l "OMPI_COMM_WORLD_RANK=1" $(for p in $(pgrep -f "$1"); do echo /proc/$p/environ; done) \
    2>/dev/null | head -1 | cut -d/ -f3
}
# The figures of a --json run without its timings.
figures() { sed -E 's/"seconds": [0-9.]+, "images_per_s": [0-9.]+//' "$1"; }

# same NAME N FLAGS...: mpirun -np N against --micro-batches N, checkpoint bytes and figures.
same() {
  local name=$1 n=$2
  shift 2
  "$cli" train "$@" --micro-batches "$n" --save "$tmp/$name.m.st" --json >"$tmp/$name.m.out" \
    2>"$tmp/$name.m.err" || { fail "$name: the micro-batch run failed" "$tmp/$name.m.err"; return; }
  "${mpi[@]}" -np "$n" "$cli" train "$@" --save "$tmp/$name.d.st" --json >"$tmp/$name.d.out" \
    2>"$tmp/$name.d.err" || { fail "$name: mpirun -np $n failed" "$tmp/$name.d.err"; return; }
  if ! cmp -s "$tmp/$name.m.st" "$tmp/$name.d.st"; then
    fail "$name: mpirun -np $n's checkpoint differs from --micro-batches $n's"
  elif ! diff <(figures "$tmp/$name.m.out") <(figures "$tmp/$name.d.out") >"$tmp/$name.diff"; then
    fail "$name: mpirun -np $n printed other figures than --micro-batches $n" "$tmp/$name.diff"
  else
    pass
  fi
}

small=(--seed 3 --threads 1 --train-limit 700 --test-limit 100)
bn_dropout=(--model "$models/bn_dropout.txt" "${small[@]}" --epochs 2 --batch 23 --crop-padding 2
  --flip --optimizer adam --lr 0.01 --schedule cosine)

case $part in
bits)
  for n in 1 2 3 4; do same "bn-dropout-$n" "$n" "${bn_dropout[@]}"; done
  # Even parts: 24 = 2 x 12 = 3 x 8 = 4 x 6, and 696 = 29 x 24.
  even=(--model "$models/bn_dropout.txt" --seed 3 --threads 1 --train-limit 696 --test-limit 100
    --epochs 1 --batch 24 --crop-padding 2 --flip --optimizer adam --lr 0.01)
  for n in 2 3 4; do same "bn-dropout-even-$n" "$n" "${even[@]}"; done
  # 691 = 30 x 23 + 1: the last batch has one sample, and ranks 1.. none.
  for n in 2 4; do
    same "empty-shards-$n" "$n" --model "$models/dropout.txt" --seed 3 --threads 1 \
      --train-limit 691 --test-limit 100 --epochs 1 --batch 23
  done
  same resnet-2 2 --model resnet-small --seed 1 --threads 1 --train-limit 96 --test-limit 32 \
    --epochs 1 --batch 32 --schedule constant
  # Each rank runs two threads: still the bits of one process with two threads.
  same lenet-threads-2 2 --seed 1 --threads 2 --train-limit 512 --test-limit 64 --epochs 1 \
    --batch 64
  # Regression (normalised real-valued targets, Huber) and reconstruction (the input with noise
  # as the target): the targets are split with their samples, the figures summed in batch order.
  if /usr/bin/python3 "$models/../../tools/make_rotation_set.py" --out "$tmp/rotation" \
    --train-limit 300 --test-limit 60 >/dev/null 2>"$tmp/rotation.err"; then
    sed 's/out_features=10/out_features=1/' "$models/bn_dropout.txt" >"$tmp/regression.txt"
    for n in 2 3; do
      same "regression-$n" "$n" --data "$tmp/rotation" --model "$tmp/regression.txt" "${small[@]}" \
        --train-limit 299 --epochs 1 --batch 23 --normalize-targets --loss huber --optimizer adam \
        --lr 0.01
    done
  else
    echo "SKIP regression bits: tools/make_rotation_set.py needs numpy ($(head -1 "$tmp/rotation.err"))"
  fi
  same autoencoder-2 2 --model "$models/../../models/autoencoder.txt" --target input --noise 0.1 \
    "${small[@]}" --train-limit 230 --epochs 1 --batch 23 --optimizer adam
  ;;
resume)
  # A constant rate: a cosine's curve follows the total of epochs, which the resume changes.
  bn_dropout+=(--schedule constant)
  "${mpi[@]}" -np 2 "$cli" train "${bn_dropout[@]}" --epochs 1 --save "$tmp/epoch1.st" --quiet \
    >/dev/null 2>"$tmp/epoch1.err" || fail "resume: the first epoch on 2 ranks failed" "$tmp/epoch1.err"
  # Another number of ranks: the continuation is one process's with that many micro-batches.
  "${mpi[@]}" -np 3 "$cli" train --resume "$tmp/epoch1.st" --threads 1 --epochs 2 --save "$tmp/r3.st" \
    --quiet >/dev/null 2>"$tmp/r3.err" || fail "resume: -np 3 failed" "$tmp/r3.err"
  "$cli" train --resume "$tmp/epoch1.st" --threads 1 --epochs 2 --micro-batches 3 --save "$tmp/m3.st" \
    --quiet >/dev/null 2>"$tmp/m3.err" || fail "resume: --micro-batches 3 failed" "$tmp/m3.err"
  cmp -s "$tmp/r3.st" "$tmp/m3.st" && pass ||
    fail "resume: 3 ranks resuming 2 ranks' checkpoint differ from --micro-batches 3"
  # The same number: the unbroken run.
  "${mpi[@]}" -np 2 "$cli" train --resume "$tmp/epoch1.st" --threads 1 --epochs 2 --save "$tmp/r2.st" \
    --quiet >/dev/null 2>"$tmp/r2.err" || fail "resume: -np 2 failed" "$tmp/r2.err"
  "${mpi[@]}" -np 2 "$cli" train "${bn_dropout[@]}" --save "$tmp/u2.st" --quiet >/dev/null \
    2>"$tmp/u2.err" || fail "resume: the unbroken run failed" "$tmp/u2.err"
  cmp -s "$tmp/r2.st" "$tmp/u2.st" && pass ||
    fail "resume: 2 ranks resuming after epoch 1 differ from the unbroken 2-rank run"
  ;;
faults)
  # Start-up check: rank 1 has another seed (so other weights); one message, before training.
  "${mpi[@]}" -np 1 "$cli" train "${small[@]}" --epochs 1 --seed 1 : \
    -np 1 "$cli" train "${small[@]}" --epochs 1 --seed 2 >"$tmp/mismatch.out" 2>&1
  rc=$?
  if [[ $rc -ne 0 ]] && [[ $(grep -c "disagree on model (its spec, weights" "$tmp/mismatch.out") -eq 1 ]] &&
    ! grep -q "epoch 1/1" "$tmp/mismatch.out"; then pass; else
    fail "start-up mismatch: exit $rc, want one 'disagree on model' message and no epoch" "$tmp/mismatch.out"
  fi
  # --micro-batches under mpirun must be 1 or N.
  "${mpi[@]}" -np 2 "$cli" train --micro-batches 3 >"$tmp/micro.out" 2>&1
  rc=$?
  [[ $rc -ne 0 ]] && grep -q "under mpirun each of the 2 ranks computes one part" "$tmp/micro.out" &&
    pass || fail "--micro-batches 3 on 2 ranks: exit $rc" "$tmp/micro.out"

  # Divergence: every rank stops at the same step with the same error, and the last good state
  # saved is the micro-batch run's.
  diverge=(--seed 1 --threads 1 --train-limit 640 --test-limit 64 --epochs 1 --batch 32
    --lr 1e4 --schedule constant)
  "$cli" train "${diverge[@]}" --micro-batches 2 --save "$tmp/div.m.st" >"$tmp/div.m.out" 2>&1
  "${mpi[@]}" -np 2 "$cli" train "${diverge[@]}" --save "$tmp/div.d.st" >"$tmp/div.d.out" 2>&1
  rc=$?
  if [[ $rc -eq 1 ]] && [[ $(grep -c "error: epoch 1, batch" "$tmp/div.d.out") -eq 1 ]] &&
    cmp -s "$tmp/div.m.st" "$tmp/div.d.st"; then pass; else
    fail "divergence on 2 ranks: exit $rc (want 1), one error, the micro-batch run's last good state" "$tmp/div.d.out"
  fi
  # That state is mid-epoch: resumed at a lower rate, 2 ranks continue as --micro-batches 2 does
  # (the same shuffle, the batches after the ones run).
  if grep -q "saved the last good state, after epoch 0 and [0-9]* batches" "$tmp/div.d.out"; then
    "${mpi[@]}" -np 2 "$cli" train --resume "$tmp/div.d.st" --threads 1 --lr 0.01 --epochs 1 \
      --save "$tmp/mid.d.st" --quiet >"$tmp/mid.d.out" 2>&1
    "$cli" train --resume "$tmp/div.d.st" --threads 1 --lr 0.01 --epochs 1 --micro-batches 2 \
      --save "$tmp/mid.m.st" --quiet >"$tmp/mid.m.out" 2>&1
    cmp -s "$tmp/mid.d.st" "$tmp/mid.m.st" && pass ||
      fail "mid-epoch resume on 2 ranks: not the bits of --micro-batches 2" "$tmp/mid.d.out"
  else
    fail "divergence: no mid-epoch state saved" "$tmp/div.d.out"
  fi

  # SIGKILL of rank 1 mid-run: the job ends non-zero within 60 s; the checkpoint stays whole.
  long=(--seed 1 --threads 1 --train-limit 2000 --test-limit 100 --epochs 1000 --batch 50
    --save "$tmp/long.st" --save-every 1 --quiet)
  "${mpi[@]}" -np 2 "$cli" train "${long[@]}" >"$tmp/kill.out" 2>&1 &
  job=$!
  rank1=$(rank1_of "$tmp/long.st")
  if [[ -z $rank1 ]]; then
    fail "SIGKILL: no checkpoint or no rank 1 process found" "$tmp/kill.out"
    kill -KILL $job 2>/dev/null
  else
    start=$(date +%s)
    kill -KILL "$rank1"
    wait $job
    rc=$? took=$(($(date +%s) - start))
    if [[ $rc -ne 0 && $took -le 60 ]] && "$cli" eval --checkpoint "$tmp/long.st" --limit 100 \
      >"$tmp/kill.eval" 2>&1; then pass; else
      fail "SIGKILL of rank 1: exit $rc after $took s (want non-zero within 60 s), then eval" "$tmp/kill.eval"
    fi
  fi

  # A rank that stops answering (SIGSTOP): the others give up after --comm-timeout.
  "${mpi[@]}" -np 2 "$cli" train "${long[@]}" --save "$tmp/stop.st" --comm-timeout 3 \
    >"$tmp/stop.out" 2>&1 &
  job=$!
  rank1=$(rank1_of "$tmp/stop.st")
  if [[ -z $rank1 ]]; then
    fail "SIGSTOP: no checkpoint or no rank 1 process found" "$tmp/stop.out"
    kill -KILL $job 2>/dev/null
  else
    start=$(date +%s)
    kill -STOP "$rank1"
    wait $job
    rc=$? took=$(($(date +%s) - start))
    kill -KILL "$rank1" 2>/dev/null
    if [[ $rc -ne 0 && $took -le 60 ]] && grep -q "rank 0 of 2 waited 3 s (--comm-timeout).*: rank 1 has stopped answering" "$tmp/stop.out"; then
      pass
    else
      fail "SIGSTOP of rank 1: exit $rc after $took s, want the --comm-timeout message" "$tmp/stop.out"
    fi
  fi
  ;;
overlap)
  # --allreduce overlap (buckets summed during the backward pass) against the sum after it:
  # weights after 5 steps within 1e-5, relative (the sums are both in rank order: the same bits,
  # checked too). vgg-small's 0.44 M gradients in buckets of 0.25 MiB: seven of them.
  five=(--model vgg-small --seed 1 --threads 1 --train-limit 160 --test-limit 32 --epochs 1
    --batch 32 --schedule constant --quiet)
  for n in 2 3; do
    "${mpi[@]}" -np $n "$cli" train "${five[@]}" --save "$tmp/ordered$n.st" >/dev/null \
      2>"$tmp/ordered$n.err" || fail "overlap: the ordered run on $n ranks failed" "$tmp/ordered$n.err"
    "${mpi[@]}" -np $n "$cli" train "${five[@]}" --allreduce overlap --bucket-mb 0.25 \
      --save "$tmp/overlap$n.st" >"$tmp/overlap$n.out" 2>&1 ||
      fail "overlap: the overlapped run on $n ranks failed" "$tmp/overlap$n.out"
    python3 "$models/close_tensors.py" "$tmp/overlap$n.st" "$tmp/ordered$n.st" 1e-5 \
      >"$tmp/close$n.out" 2>&1 && pass ||
      fail "overlap on $n ranks: weights after 5 steps beyond 1e-5 of the ordered sum's" "$tmp/close$n.out"
    cmp -s "$tmp/overlap$n.st" "$tmp/ordered$n.st" && pass ||
      fail "overlap on $n ranks: not the ordered sum's bits" "$tmp/close$n.out"
  done
  ;;
*)
  echo "test_mpi.sh: unknown part '$part' (bits, resume, faults or overlap)"
  exit 2
  ;;
esac

echo "mpi $part: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
