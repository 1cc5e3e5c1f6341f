#!/usr/bin/env bash
# CLI checks: help, usage errors, bad data (missing folder, truncated and corrupt IDX files) give
# one clear message and a non-zero exit; a short real training run prints valid JSON lines; the
# gradcheck command passes. Usage: test_cli.sh path/to/convnet
set -u
cli=$1
data=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME WANT_RC PATTERN -- COMMAND...: exit code and a grep -E pattern on stdout+stderr.
expect() {
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -eq $want_rc ]] && grep -qE -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $rc (want $want_rc), output:"
    sed 's/^/    /' <<<"$out" | head -20
    echo "    (wanted pattern: $pattern)"
  fi
}

expect help 0 "gradcheck +check every layer" -- "$cli" --help
expect train-help 0 "--optimizer VALUE .*sgd, adam" -- "$cli" train --help
expect train-help-all-flags 0 "--threads VALUE.*--json" -- bash -c "'$cli' train --help | tr '\n' ' '"
expect no-command 2 "usage: convnet" -- "$cli"
expect unknown-command 2 "unknown command 'fly'" -- "$cli" fly
expect unknown-flag 2 "unknown flag --epoch " -- "$cli" train --epoch 3
expect bad-int 2 "--epochs: expected an integer, got 'x'" -- "$cli" train --epochs x
expect long-value-cut 2 "^convnet train: --epochs: expected an integer, got 'x{80}\.\.\.' \(100000 characters\)$" -- \
  "$cli" train --epochs "$(head -c 100000 /dev/zero | tr '\0' x)"
expect bad-optimizer 2 "--optimizer: expected sgd, adam, adamw or rmsprop" -- "$cli" train --optimizer lbfgs
# Mistakes found before any data is read (the data folder here does not exist).
expect unknown-model-first 2 "--model: unknown model 'lenett' \(built-in: lenet, vgg-small, resnet-small;" -- \
  "$cli" train --model lenett --data "$tmp/none"
expect epochs-too-many 2 "--epochs: expected at most 1000000, got 5000000000" -- "$cli" train --epochs 5000000000
expect save-unwritable 1 "error: --save $tmp/no/dir/x.safetensors: cannot write in $tmp/no/dir: No such file" -- \
  "$cli" train --save "$tmp/no/dir/x.safetensors" --data "$tmp/none"
expect log-unwritable 1 "error: --log $tmp/no/x.csv: cannot write in $tmp/no: No such file" -- \
  "$cli" train --log "$tmp/no/x.csv" --data "$tmp/none"
expect missing-dir 1 "error: $tmp/none: data directory not found" -- "$cli" train --data "$tmp/none"

# Flags and settings that cannot work are refused before any data is read, naming the flag.
expect lr-negative 2 "^convnet train: --lr: expected a learning rate >= 0, got -1$" -- "$cli" train --lr -1
expect momentum-negative 2 "^convnet train: --momentum: expected a momentum >= 0, got -1$" -- \
  "$cli" train --momentum -1
expect weight-decay-negative 2 "^convnet train: --weight-decay: expected a weight decay >= 0, got -1$" -- \
  "$cli" train --weight-decay -1
expect min-lr-above-lr 2 "^convnet train: --min-lr 0.1: above the learning rate 0.05 \(--lr auto\): the schedule anneals from --lr down to --min-lr$" -- \
  "$cli" train --min-lr 0.1
expect progress-every-negative 2 "^convnet train: --progress-every: expected seconds >= 0" -- \
  "$cli" train --progress-every -1
expect threads-env-not-a-number 2 "^convnet train: CONVNET_THREADS: expected a thread count from 1 to 1024, got 'abc'$" -- \
  env CONVNET_THREADS=abc "$cli" train --data "$tmp/none"
expect threads-env-too-many 2 "^convnet summary: CONVNET_THREADS: expected a thread count from 1 to 1024, got 100000$" -- \
  env CONVNET_THREADS=100000 "$cli" summary
expect threads-too-many 2 "^convnet train: --threads: expected at most 1024, got 5000$" -- \
  "$cli" train --threads 5000
expect precision-unknown 2 "^convnet train: --precision: expected fp32 or bf16, got 'fp16'$" -- \
  "$cli" train --precision fp16
# bf16 runs where the CPU has AVX512_BF16 and is refused, naming the flag, where it has not.
if grep -qw avx512_bf16 /proc/cpuinfo; then
  expect precision-bf16 0 "^model lenet, .*, bf16$" -- \
    "$cli" bench --model lenet --precision bf16 --windows 1 --window-seconds 0.05 --warmup 1
else
  expect precision-bf16-unsupported 2 "^convnet bench: --precision bf16: this CPU has no bf16" -- \
    "$cli" bench --model lenet --precision bf16 --windows 1 --window-seconds 0.05 --warmup 1
fi
if [[ $(nproc) -lt 16 ]]; then
  expect threads-oversubscribed 0 "^convnet bench: warning: --threads 16 is more than the $(nproc) hardware threads" -- \
    bash -c "'$cli' bench --threads 16 --windows 1 --window-seconds 0.05 --warmup 1 2>&1 >/dev/null"
fi
# A folder where a file is to be written is refused before the data loads (it used to fail only
# after training, losing the model); a stale temporary folder of an older release is no obstacle.
mkdir -p "$tmp/adir"
expect save-is-a-folder 1 "^convnet train: error: --save $tmp/adir: is a folder; expected a file name" -- \
  "$cli" train --save "$tmp/adir" --data "$tmp/none"
expect log-is-a-folder 1 "^convnet train: error: --log $tmp/adir: is a folder" -- \
  "$cli" train --log "$tmp/adir" --data "$tmp/none"

# Model spec files and the summary command.
models=$(cd "$(dirname "$0")/../../models" && pwd)
expect summary 0 "Total params: 61706 FLOPs per sample: forward 833040" -- \
  bash -c "'$cli' summary --model lenet | tr '\n' ' '"
expect summary-spec-file 0 "Total params: 696042" -- "$cli" summary --model "$models/resnet-small.txt"
expect summary-spec-text 0 "^model graph input=input" -- "$cli" summary --model resnet-small --spec
printf 'model sequential\nlayer conv2d out_channels=4 kernal=3\n' >"$tmp/bad.txt"
expect spec-error 1 "summary: error: $tmp/bad.txt:2:29: unknown option 'kernal' for conv2d" -- \
  "$cli" summary --model "$tmp/bad.txt"
# Found by fuzzing: sizes so large that index arithmetic would overflow are refused by name.
printf 'model sequential\nlayer conv2d out_channels=6 kernel=5 pad=22222222222222\n' >"$tmp/huge.txt"
expect spec-size-limit 1 "error: ($tmp/huge.txt:2:7: )?layer 0: conv2d .*: padding = 22222222222222 is more than the 16777216 this library accepts" -- \
  "$cli" summary --model "$tmp/huge.txt"
printf 'model sequential\nlayer flatten\nlayer linear out_features=100000000000\n' >"$tmp/wide.txt"
expect linear-size-limit 1 "error: .*linear .*weight is more than this library accepts" -- \
  "$cli" summary --model "$tmp/wide.txt"
expect spec-missing 1 "error: $tmp/none.txt: cannot open model spec: No such file" -- \
  "$cli" train --model "$tmp/none.txt"
expect resume-missing 1 "error: $tmp/none.safetensors: cannot open: No such file" -- \
  "$cli" train --resume "$tmp/none.safetensors"
expect save-every-alone 2 "--save-every: needs --save FILE" -- "$cli" train --save-every 2

# A folder whose training images are cut short.
mkdir -p "$tmp/trunc" "$tmp/corrupt" "$tmp/mismatch"
if [[ -d $data ]]; then
  gzip -dc "$data/train-images-idx3-ubyte.gz" | head -c 100000 >"$tmp/trunc/train-images-idx3-ubyte"
  cp "$data/train-labels-idx1-ubyte.gz" "$data"/t10k-* "$tmp/trunc/"
  expect truncated-idx 1 "trunc/train-images-idx3-ubyte: truncated: expected 47040000 bytes" -- \
    "$cli" train --data "$tmp/trunc"
  head -c 20000 "$data/train-images-idx3-ubyte.gz" >"$tmp/corrupt/train-images-idx3-ubyte.gz"
  cp "$data/train-labels-idx1-ubyte.gz" "$data"/t10k-* "$tmp/corrupt/"
  expect truncated-gzip 1 "corrupt/train-images-idx3-ubyte.gz: truncated" -- \
    "$cli" train --data "$tmp/corrupt"
  cp "$data/train-images-idx3-ubyte.gz" "$data"/t10k-* "$tmp/mismatch/"
  cp "$data/t10k-labels-idx1-ubyte.gz" "$tmp/mismatch/train-labels-idx1-ubyte.gz"
  expect label-count 1 "60000 images but .* 10000 labels" -- "$cli" train --data "$tmp/mismatch"

  # A short real run: JSON lines with every key, accuracies as fractions.
  expect train-json 0 '^\{"epoch": 1, "learning_rate": 0.05, "train_loss": [0-9.]+, "train_acc": 0\.[0-9]+, "test_loss": [0-9.]+, "test_acc": 0\.[0-9]+, "seconds": [0-9.]+, "images_per_s": [0-9.]+\}$' -- \
    "$cli" train --epochs 1 --train-limit 2000 --test-limit 500 --json --threads 2
  expect train-text 0 "epoch 2/2  train loss .* test loss .* images/s" -- \
    "$cli" train --epochs 2 --train-limit 1000 --test-limit 200 --optimizer adam --batch 32

  # Resuming is exact: 2 epochs, saved, resumed to 3, gives the bytes of 3 unbroken epochs (a
  # model with BatchNorm statistics and a Dropout stream; Adam's moments and step count). At a
  # constant rate: the default cosine anneals over the total, so 2 + 1 epochs are not 3 there
  # (the interrupted run below resumes on the default schedule).
  printf '%s\n' 'model sequential' 'layer conv2d out_channels=4 kernel=3 pad=1' \
    'layer batchnorm2d' 'layer relu' 'layer maxpool2d kernel=2' 'layer dropout p=0.2' \
    'layer flatten' 'layer linear out_features=10' >"$tmp/net.txt"
  run=(--model "$tmp/net.txt" --optimizer adam --train-limit 640 --test-limit 100 --batch 32)
  expect train-save 0 "saved $tmp/a.safetensors" -- \
    "$cli" train "${run[@]}" --epochs 2 --schedule constant --threads 2 --save "$tmp/a.safetensors"
  expect train-resume 0 "resuming $tmp/a.safetensors after epoch 2 .*epoch 3/3 " -- \
    bash -c "'$cli' train --epochs 3 --threads 2 --resume '$tmp/a.safetensors' \
      --save '$tmp/b.safetensors' | tr '\n' ' '"
  expect train-unbroken 0 "epoch 3/3 " -- \
    "$cli" train "${run[@]}" --epochs 3 --schedule constant --threads 2 --save-every 1 \
      --save "$tmp/c.safetensors"
  # Same weights, buffers, optimizer state and metadata: the same bytes.
  expect resume-bit-identical 0 "^same$" -- \
    bash -c "cmp '$tmp/b.safetensors' '$tmp/c.safetensors' && echo same"
  expect resume-past-the-end 2 "--epochs 2: $tmp/a.safetensors has already run 2 epochs" -- \
    "$cli" train --epochs 2 --resume "$tmp/a.safetensors"
  expect resume-with-other-model 2 "^convnet train: --model lenet: $tmp/a.safetensors holds model $tmp/net.txt, and --resume continues that model" -- \
    "$cli" train --model lenet --resume "$tmp/a.safetensors"
  # The original command with --resume added: flags that agree with the checkpoint change
  # nothing, so it continues exactly as --resume alone does.
  expect resume-original-command 0 "^same$" -- \
    bash -c "'$cli' train ${run[*]} --epochs 3 --schedule constant --threads 2 \
      --resume '$tmp/a.safetensors' --save '$tmp/b2.safetensors' >/dev/null &&
      cmp '$tmp/b2.safetensors' '$tmp/b.safetensors' && echo same"
  head -c 12000 "$tmp/a.safetensors" >"$tmp/cut.safetensors"
  expect resume-truncated 1 "error: $tmp/cut.safetensors: truncated: the header describes" -- \
    "$cli" train --epochs 3 --resume "$tmp/cut.safetensors"
  expect resume-other-optimizer 1 "holds adam state, which cannot continue as sgd" -- \
    "$cli" train --epochs 3 --resume "$tmp/a.safetensors" --optimizer sgd
  # A schedule's rates reach the optimizer (PyTorch's own sequences are in the unit tests); the
  # log file gets one row per epoch; early stopping ends a run that stops improving.
  expect schedule-cosine 0 '"epoch": 3, "learning_rate": 0.025, .*"epoch": 4, "learning_rate": 0.00732233' -- \
    bash -c "'$cli' train --epochs 4 --train-limit 256 --test-limit 64 --schedule cosine \
      --log '$tmp/log.csv' --json --threads 1 2>/dev/null | tr '\n' ' '"
  expect log-csv 0 "^epoch,learning_rate,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,seconds,images_per_s 1,0.05,[0-9.]+,[0-9.]+,,,[0-9.]+,[0-9.]+,.* 4,0.00732233" -- \
    bash -c "tr '\n' ' ' <'$tmp/log.csv'"
  expect schedule-step-needs-size 2 "--schedule step: needs --step-size N" -- "$cli" train --schedule step
  expect schedule-unknown 2 "--schedule: unknown learning-rate schedule 'linear'" -- "$cli" train --schedule linear
  expect log-bad-extension 2 "--log: expected a file ending in .csv, .jsonl or .json" -- \
    "$cli" train --log "$tmp/log.txt" --train-limit 64 --test-limit 10
  expect early-stop 0 "early stop after epoch 3: val_loss has not improved for 2 epochs" -- \
    "$cli" train --epochs 10 --train-limit 512 --test-limit 64 --val-split 0.25 --early-stop 2 \
      --min-delta 100 --threads 1
  expect early-stop-needs-validation 2 "--early-stop: needs --val-split" -- "$cli" train --early-stop 3
  expect quiet 0 "^epoch 2/2  train loss [0-9.]+ acc [0-9.]+%  test loss" -- \
    "$cli" train --epochs 2 --train-limit 256 --test-limit 64 --quiet
  expect progress-lines 0 "epoch 1/1: batch [0-9]+/[0-9]+  loss [0-9.]+  acc [0-9.]+%  [0-9]+ images/s  ETA [0-9]+:[0-9][0-9]" -- \
    bash -c "'$cli' train --epochs 1 --train-limit 6400 --test-limit 64 --threads 1 --progress-every 0.01 2>&1 >/dev/null"

  # Ctrl-C mid-epoch: the run stops after the batch, saves, says where, exits 130; resuming it
  # gives the bytes of an unbroken run (same data order, augmentation, BatchNorm, Dropout, Adam).
  # SIGTERM and SIGHUP (Docker, SLURM, systemd, a closed ssh session) are handled the same way.
  sigint_run=("${run[@]}" --train-limit 0 --flip --threads 2)
  # stop_run SIGNAL NAME: starts the 3-epoch run saving to $tmp/NAME.safetensors, sends SIGNAL
  # once it is past its first batches, and leaves its exit code in $stop_rc.
  stop_run() {
    "$cli" train "${sigint_run[@]}" --epochs 3 --progress-every 0.05 --save "$tmp/$2.safetensors" \
      >"$tmp/$2.out" 2>"$tmp/$2.err" &
    local pid=$!
    for _ in $(seq 200); do grep -q "batch" "$tmp/$2.err" 2>/dev/null && break; sleep 0.05; done
    kill -"$1" "$pid"
    wait "$pid"
    stop_rc=$?
  }
  stop_run INT int
  expect sigint-exit 0 "^130$" -- echo "$stop_rc"
  expect sigint-message 0 "interrupted by Ctrl-C \(SIGINT\) after epoch 0 and [0-9]+ batches of epoch 1: saved $tmp/int.safetensors \(continue with: convnet train --resume $tmp/int.safetensors --epochs 3\)" -- \
    cat "$tmp/int.err"
  for sig in TERM HUP; do
    stop_run "$sig" "sig$sig"
    expect "sig$sig-exit" 0 "^$((128 + $(kill -l "$sig")))$" -- echo "$stop_rc"
    expect "sig$sig-message" 0 "interrupted by SIG$sig after epoch 0 and [0-9]+ batches of epoch 1: saved $tmp/sig$sig.safetensors \(continue with: convnet train --resume $tmp/sig$sig.safetensors --epochs 3\)" -- \
      cat "$tmp/sig$sig.err"
    expect "sig$sig-resumable" 0 "resuming $tmp/sig$sig.safetensors after epoch 0 and [0-9]+ batches" -- \
      "$cli" train --resume "$tmp/sig$sig.safetensors" --epochs 1 --threads 2
  done
  expect sigint-resume 0 "resuming $tmp/int.safetensors after epoch 0 and [0-9]+ batches of the next" -- \
    bash -o pipefail -c "'$cli' train --resume '$tmp/int.safetensors' --epochs 1 \
      --save '$tmp/int-resumed.safetensors' | tee '$tmp/int-resumed.out'"
  # Its rates follow the new total (the same first epoch's, under cosine), and it says so.
  expect resume-new-total-note 0 "^note: --schedule cosine follows the total of epochs: from here on the rates are those of a 1-epoch run, not of the 3-epoch run" -- \
    cat "$tmp/int-resumed.out"
  "$cli" train "${sigint_run[@]}" --epochs 1 --save "$tmp/unbroken.safetensors" >/dev/null 2>&1
  expect sigint-resume-bit-identical 0 "^same$" -- \
    bash -c "cmp '$tmp/int-resumed.safetensors' '$tmp/unbroken.safetensors' && echo same"
  # Without --epochs, a resumed run finishes the total it was started with (here one stopped
  # early after 2 of its 4 epochs).
  expect early-stop-save 0 "early stop after epoch 2" -- \
    "$cli" train "${run[@]}" --epochs 4 --val-split 0.25 --early-stop 1 --min-delta 100 \
      --save "$tmp/early.safetensors"
  expect resume-recorded-total 0 "resuming $tmp/early.safetensors after epoch 2 .*epoch 4/4 " -- \
    bash -o pipefail -c "'$cli' train --resume '$tmp/early.safetensors' --early-stop 0 | tr '\n' ' '"

  # Divergence: the step that makes the loss non-finite stops the run with where it happened,
  # saves the last good state (the weights before that step) and says how to go on at a lower
  # rate; the saved checkpoint loads and resumes.
  expect diverge-setup 0 "saved $tmp/good.safetensors" -- "$cli" train --epochs 1 --train-limit 640 \
    --test-limit 64 --save "$tmp/good.safetensors"
  expect diverge 1 "error: epoch 2, batch [0-9]+/10: softmax_cross_entropy: loss is (nan|inf|-nan) at optimizer step [0-9]+ \(batch of 64\): the first non-finite values are in the output of layer[0-9]+ \(.*\)\. The model diverged.* saved the last good state, after epoch 1( and [0-9]+ batches of epoch 2)?, to $tmp/good.safetensors \(continue at a lower rate with: convnet train --resume $tmp/good.safetensors --lr 1e\+07 --epochs 2\)" -- \
    bash -c "'$cli' train --resume '$tmp/good.safetensors' --epochs 2 --lr 1e8 \
      --save '$tmp/good.safetensors' 2>&1 | tr '\n' ' '; exit \${PIPESTATUS[0]}"
  expect diverge-resumes 0 "^resuming $tmp/good.safetensors after epoch 1( and [0-9]+ batches of the next)? \(step [0-9]+\)$" -- \
    bash -c "'$cli' train --resume '$tmp/good.safetensors' --lr 0.01 --epochs 2 \
      --save '$tmp/good-resumed.safetensors' 2>/dev/null | head -1"
  expect diverge-without-save 1 "saved the last good state, after epoch 0( and [0-9]+ batches of epoch 1)?, to interrupted.safetensors" -- \
    bash -c "cd '$tmp' && '$(realpath "$cli")' train --epochs 1 --train-limit 640 --test-limit 64 --lr 1e8"
  # Files: a link at the old temporary name or at the log's path is never written through; two
  # runs saving to one path both finish with a complete file; a stale temporary folder does not
  # stop a save; a file-size limit (ulimit -f) is an error that keeps the previous checkpoint and
  # leaves no temporary.
  small=(--epochs 1 --train-limit 256 --test-limit 64 --threads 1 --quiet)
  mkdir -p "$tmp/links"
  echo victim >"$tmp/links/victim.txt"
  ln -s victim.txt "$tmp/links/m.st.tmp"
  ln -s victim.txt "$tmp/links/log.csv"
  expect save-never-through-a-link 0 "^victim checkpoint log$" -- bash -c "'$cli' train ${small[*]} \
    --save '$tmp/links/m.st' --log '$tmp/links/log.csv' >/dev/null && cd '$tmp/links' &&
    echo \$(cat victim.txt) \$([[ -f m.st && ! -L m.st ]] && echo checkpoint) \
      \$([[ -f log.csv && ! -L log.csv ]] && grep -q '^epoch,' log.csv && echo log)"
  race=ok
  for round in 1 2 3; do
    "$cli" train "${small[@]}" --save "$tmp/race.st" >/dev/null 2>"$tmp/race1.err" &
    p1=$!
    "$cli" train "${small[@]}" --seed 2 --save "$tmp/race.st" >/dev/null 2>"$tmp/race2.err" &
    p2=$!
    wait $p1 || race="round $round: first run failed: $(cat "$tmp/race1.err")"
    wait $p2 || race="round $round: second run failed: $(cat "$tmp/race2.err")"
  done
  expect two-savers-one-path 0 "^ok$" -- echo "$race"
  expect two-savers-complete-file 0 "loss [0-9.]+  accuracy" -- \
    "$cli" eval --checkpoint "$tmp/race.st" --limit 64
  mkdir -p "$tmp/stale.st.tmp"
  expect save-beside-stale-temporary-folder 0 "^epoch 1/1 " -- \
    "$cli" train "${small[@]}" --save "$tmp/stale.st"
  cp "$tmp/stale.st" "$tmp/limited.st"
  expect save-under-file-size-limit 1 "error: $tmp/limited.st: cannot write byte [0-9]+ of [0-9]+: File too large \($tmp/limited.st is left as it was\)" -- \
    bash -c "ulimit -f 100; '$cli' train ${small[*]} --save '$tmp/limited.st'"
  expect file-size-limit-keeps-previous 0 "^same, nothing left$" -- \
    bash -c "cmp '$tmp/limited.st' '$tmp/stale.st' && [[ -z \$(ls -A '$tmp' | grep '\.tmp-') ]] && echo 'same, nothing left'"
  # Recipe checks that need the data: a crop larger than the image; a momentum PyTorch allows
  # but which never decays.
  expect crop-padding-too-large 2 "^convnet train: --crop-padding 28: not smaller than the 1x28x28 images \(at most 27" -- \
    "$cli" train "${small[@]}" --crop-padding 28
  expect momentum-not-below-one 0 "warning: --momentum 2 is not below 1: the velocity keeps all of every past gradient" -- \
    "$cli" train --epochs 1 --train-limit 64 --test-limit 64 --threads 1 --momentum 2

  expect clip-grad-norm 0 "epoch 1/1 " -- "$cli" train --epochs 1 --train-limit 640 --test-limit 64 \
    --clip-grad-norm 0.5
  expect clip-grad-norm-negative 2 "--clip-grad-norm: expected a norm >= 0, got -1" -- \
    "$cli" train --clip-grad-norm -1

  # An absurd batch on a machine that cannot hold it: a clear error, no crash. (Not under
  # AddressSanitizer, whose shadow memory alone exceeds such an address-space limit.)
  if grep -qa __asan_init "$cli"; then
    echo "SKIP out-of-memory: $cli is built with AddressSanitizer"
  else
    expect out-of-memory 1 "error: out of memory building vgg-small for batches of 60000 images of 1x28x28 \((layer [0-9]+: .* on input 60000x.*: out of memory for its weights and workspace|out of memory for the activations and their gradients: [0-9]+ MB for a batch of 60000x1x28x28)\): try a smaller --batch" -- \
      bash -c "ulimit -v 3000000; '$cli' train --model vgg-small --batch 60000 --epochs 1"
    # Every command that builds a model names the stage and the size (they said "out of memory").
    expect out-of-memory-summary 1 "^convnet summary: error: (layer 0: conv2d 3x3 ->32 pad 1x1 on input 1x3x20000x20000: out of memory for its weights and workspace|out of memory for the activations and their gradients: [0-9]+ MB for a batch of 1x3x20000x20000)$" -- \
      bash -c "ulimit -v 3000000; '$cli' summary --model vgg-small --input 3x20000x20000"
  fi

  # explain: every section, and the first SGD step moves each parameter by lr·||dL/dW||.
  expect explain 0 "1. Forward.*layer11 linear 84->10 +8x10 .*2. Loss: .*L = [0-9.]+ .*3. Backward.*layer0 conv2d.*4. Update: sgd .*layer11.bias " -- \
    bash -c "'$cli' explain | tr '\n' ' '"
  expect explain-update-is-lr-times-gradient 0 "^ok$" -- bash -c "'$cli' explain --lr 0.1 --momentum 0 | awk '
    /^3. Backward/ { backward = 1 }
    backward && /^   layer11 linear/ && !g { g = \$(NF-1) }
    /^   layer11.weight/ { d = \$3 }
    END { r = d / (0.1 * g); print (r > 0.999 && r < 1.001) ? \"ok\" : \"ratio \" r }'"
  expect explain-graph-checkpoint 0 "stage3.1.add add .*4. Update: adam" -- \
    bash -c "'$cli' train --model resnet-small --epochs 1 --train-limit 128 --test-limit 32 \
      --optimizer adam --batch 32 --save '$tmp/rs.safetensors' >/dev/null && \
      '$cli' explain --checkpoint '$tmp/rs.safetensors' --optimizer adam --batch 4 | tr '\n' ' '"

  expect classes-mismatch 1 "output is 5 values per sample \\([0-9]+x5\\) but the data has 10 classes: its last layer needs 10 outputs" -- \
    bash -c "sed 's/out_features=10/out_features=5/' '$tmp/net.txt' >'$tmp/net5.txt' && \
      '$cli' train --model '$tmp/net5.txt' --epochs 1 --train-limit 64 --test-limit 10"
else
  echo "SKIP data-dependent checks: $data not installed"
fi

# Image folders (train/ and test/ of class sub-folders), with a validation split, normalisation
# and augmentation; then the error for a broken image, which names the file.
images=$(cd "$(dirname "$0")/../data" && pwd)
mkdir -p "$tmp/folders" "$tmp/badfolders"
ln -s "$images/images" "$tmp/folders/train"
ln -s "$images/images" "$tmp/folders/test"
expect image-folders 0 "\(image folders\).*epoch 2/2  train loss .* val loss .* test loss .*" -- \
  bash -c "'$cli' train --data '$tmp/folders' --image-size 3x16x16 --epochs 2 --batch 4 \
    --val-split 0.25 --normalize --crop-padding 2 --flip --threads 1 | tr '\n' ' '"
expect image-folders-json 0 '"val_loss": [0-9.]+, "val_acc": [0-9.]+, "test_loss"' -- \
  "$cli" train --data "$tmp/folders" --image-size 1x28x28 --epochs 1 --batch 4 --val-split 0.2 --json
ln -s "$images/images_bad" "$tmp/badfolders/train"
ln -s "$images/images" "$tmp/badfolders/test"
expect image-folder-broken 1 "error: .*/broken/truncated.png: truncated or corrupt PNG: " -- \
  "$cli" train --data "$tmp/badfolders"
# The same folders streamed (--stream): listed, decoded per batch through torchvision-style
# transforms; a broken image met in the middle of a run names the batch and the file and keeps
# the state before it; the transforms need --stream and name what they accept.
expect stream-folders 0 "\(image folders, streamed\).*epoch 2/2  train loss .* test loss .*" -- \
  bash -c "'$cli' train --data '$tmp/folders' --stream --workers 3 --image-size 3x16x16 --epochs 2 \
    --batch 4 --train-transform random-resized-crop:0.5,1+flip --eval-transform center-crop:18 \
    --threads 1 | tr '\n' ' '"
mkdir -p "$tmp/streambad" && cp -r "$images/images" "$tmp/streambad/train"
cp "$images/images_bad/broken/truncated.png" "$tmp/streambad/train/disc/"
ln -s "$images/images" "$tmp/streambad/test"
expect stream-broken 1 "error: epoch 1, batch [0-9]+/[0-9]+: $tmp/streambad/train/disc/truncated.png: truncated or corrupt PNG.*saved the state before that batch, after epoch 0.*, to $tmp/stream-bad.safetensors" -- \
  bash -o pipefail -c "'$cli' train --data '$tmp/streambad' --stream --image-size 1x28x28 --epochs 1 \
    --batch 2 --save '$tmp/stream-bad.safetensors' 2>&1 | tr '\n' ' '"
expect transform-without-stream 2 "--train-transform applies to images read with --stream" -- \
  "$cli" train --train-transform center-crop
expect stream-bad-transform 2 "--eval-transform: expected resize, random-resized-crop" -- \
  "$cli" train --stream --eval-transform crop
expect stream-without-folders 1 "error: $tmp: --stream reads $tmp/train/ \(class sub-folders of images\) or $tmp/train.txt" -- \
  "$cli" train --data "$tmp" --stream
# A checkpoint of the image-folder run, then predict and eval on it: class names come from the
# folders, the JSON has every field, eval on the test folder reproduces training's test accuracy,
# and --save-best keeps the epoch with the best validation accuracy.
folder_run=(--data "$tmp/folders" --image-size 1x16x16 --batch 4 --normalize --threads 1)
expect train-save-best 0 "best val acc [0-9.]+% at epoch 1: saved $tmp/best.safetensors" -- \
  "$cli" train "${folder_run[@]}" --epochs 3 --val-split 0.25 --optimizer adam \
    --save "$tmp/img.safetensors" --save-best "$tmp/best.safetensors"
# Messages that name the problem: an image header declaring a huge size, an empty image, an
# image folder without test/, plain and gzipped IDX copies that disagree, a spec token of 2 MB
# (cut at 80 characters), and the spec line behind each build error.
printf '\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0\0\0\0\0' >"$tmp/huge.png"
expect predict-huge-png 1 "error: $tmp/huge.png: too large: its PNG header declares 100000x100000 pixels, more than the limit of 67108864 pixels$" -- \
  "$cli" predict --checkpoint "$tmp/img.safetensors" "$tmp/huge.png"
: >"$tmp/empty.png"
expect predict-empty-image 1 "error: $tmp/empty.png: empty file \(0 bytes\), not an image$" -- \
  "$cli" predict --checkpoint "$tmp/img.safetensors" "$tmp/empty.png"
mkdir -p "$tmp/only-train/train/disc" && cp "$images/images/disc/disc_0.png" "$tmp/only-train/train/disc/"
expect image-folder-without-test 1 "error: $tmp/only-train: has train/ but no test/ folder: an image-folder dataset needs train/ and test/, each with one sub-folder per class$" -- \
  "$cli" train --data "$tmp/only-train" --epochs 1
if [[ -d $data ]]; then
  mkdir -p "$tmp/two-copies" && cp "$data"/*.gz "$tmp/two-copies/"
  gunzip -c "$data/t10k-labels-idx1-ubyte.gz" >"$tmp/two-copies/t10k-labels-idx1-ubyte"
  expect idx-plain-and-gz-agree 0 "epoch 1/1 " -- \
    "$cli" train --data "$tmp/two-copies" --epochs 1 --train-limit 64 --test-limit 64 --quiet
  printf 'x' >>"$tmp/two-copies/t10k-labels-idx1-ubyte"
  expect idx-plain-and-gz-differ 1 "error: $tmp/two-copies/t10k-labels-idx1-ubyte and $tmp/two-copies/t10k-labels-idx1-ubyte.gz both exist and hold different data \(one ends at byte 10008\): remove the one that is out of date$" -- \
    "$cli" train --data "$tmp/two-copies" --epochs 1 --train-limit 64 --test-limit 64
fi
{ printf 'model sequential\nlayer conv2d out_channels=4 kernel='; head -c 2000000 /dev/zero | tr '\0' a; echo; } >"$tmp/long.txt"
expect spec-long-token 1 "^convnet summary: error: $tmp/long.txt:2:36: bad value 'a{80}…' \(2000000 characters\) for option 'kernel' of conv2d: expected an integer$" -- \
  "$cli" summary --model "$tmp/long.txt"
expect spec-long-token-bytes 0 "^[0-9]{2,3}$" -- bash -c "'$cli' summary --model '$tmp/long.txt' 2>&1 | wc -c"
printf 'model sequential\nlayer conv2d out_channels=4 kernel=3\nlayer flatten\nlayer linear in_features=7 out_features=10\n' >"$tmp/in-features.txt"
expect spec-linear-line 1 "summary: error: $tmp/in-features.txt:4:7: layer 2: linear 7->10: expected 7 input features, got input 1x2704$" -- \
  "$cli" summary --model "$tmp/in-features.txt"
printf 'model sequential\nlayer conv2d out_channels=4 kernel=30\nlayer flatten\nlayer linear out_features=10\n' >"$tmp/kernel.txt"
expect spec-kernel-line 1 "summary: error: $tmp/kernel.txt:2:7: layer 0: conv2d 30x30 ->4 on input 1x1x28x28: padded input 28x28 is smaller than the \(dilated\) kernel 30x30" -- \
  "$cli" summary --model "$tmp/kernel.txt"
printf 'model graph\nnode a conv2d in=input out_channels=4 kernel=3\nnode b conv2d in=input out_channels=4 kernel=1\nnode sum add in=a,b\nnode flat flatten in=sum\nnode fc linear in=flat out_features=10\n' >"$tmp/add.txt"
expect spec-add-line 1 "summary: error: $tmp/add.txt:4:6: node 'sum': add: input 1 has shape 1x4x28x28 but input 0 has 1x4x26x26 \(all inputs must match\)$" -- \
  "$cli" summary --model "$tmp/add.txt"
printf 'model graph\nnode a relu in=input\nnode flat flatten in=nothere\nnode fc linear in=flat out_features=10\n' >"$tmp/unknown.txt"
expect spec-unknown-node-line 1 "summary: error: $tmp/unknown.txt:3:22: unknown input node 'nothere' \(no node of that name; the graph input is 'input'\)$" -- \
  "$cli" summary --model "$tmp/unknown.txt"
printf 'model graph\nnode a conv2d in=input out_channels=4 kernel=3 pad=1\nnode b relu in=c\nnode c add in=a,b\nnode flat flatten in=c\nnode fc linear in=flat out_features=10\n' >"$tmp/cycle.txt"
expect spec-cycle-line 1 "summary: error: $tmp/cycle.txt:3:6: graph: node 'b' is on a cycle: 'b' reads 'c', which reads 'b' \(a node cannot depend on its own output\)$" -- \
  "$cli" summary --model "$tmp/cycle.txt"
if [[ -d $data ]]; then
  expect spec-linear-line-train 1 "train: error: $tmp/in-features.txt:4:7: layer 2: linear 7->10: expected 7 input features, got input 64x2704$" -- \
    "$cli" train --model "$tmp/in-features.txt" --epochs 1 --train-limit 64 --test-limit 64
  expect spec-cycle-line-train 1 "train: error: $tmp/cycle.txt:3:6: graph: node 'b' is on a cycle" -- \
    "$cli" train --model "$tmp/cycle.txt" --epochs 1 --train-limit 64 --test-limit 64
fi
expect best-is-a-checkpoint 0 "loss [0-9.]+  accuracy [0-9.]+%" -- \
  "$cli" eval --checkpoint "$tmp/best.safetensors"
expect save-best-needs-validation 2 "--save-best: needs --val-split" -- \
  "$cli" train --save-best "$tmp/x.safetensors"
expect predict-text 0 "bar_0.png:  (bar|disc|stripes) [0-9.]+%  (bar|disc|stripes) [0-9.]+%$" -- \
  "$cli" predict --checkpoint "$tmp/img.safetensors" --top 2 "$images/images/bar/bar_0.png"
expect predict-json 0 '^\{"file": ".*/disc_1.png", "top": \[\{"class": [0-2], "name": "(bar|disc|stripes)", "probability": [0-9.e-]+\}\], "probabilities": \[[0-9.e-]+, [0-9.e-]+, [0-9.e-]+\], "logits": \[[-0-9.e]+, [-0-9.e]+, [-0-9.e]+\]\}$' -- \
  "$cli" predict --checkpoint "$tmp/img.safetensors" --top 1 --json "$images/images/disc/disc_1.png"
expect predict-many 0 "^4$" -- bash -c "'$cli' predict --checkpoint '$tmp/img.safetensors' \
  '$images/images/bar/bar_grey.pgm' '$images/images/stripes/stripes_jpeg.jpg' \
  '$images'/images/disc/disc_[01].png | wc -l"
expect predict-not-an-image 1 "error: .*/disc/README.txt: not a readable image" -- \
  "$cli" predict --checkpoint "$tmp/img.safetensors" "$images/images/disc/README.txt"
expect predict-no-images 2 "no images given" -- "$cli" predict --checkpoint "$tmp/img.safetensors"
expect predict-no-checkpoint 1 "error: $tmp/none.safetensors: cannot open" -- \
  "$cli" predict --checkpoint "$tmp/none.safetensors" "$images/images/bar/bar_0.png"
# convnet visualize on that checkpoint (lenet on 1x16x16): the first convolution's 6 filters of
# 5x5 (enlarged 8 times, in 3 columns, 2 pixels apart), then each convolution's maps: 6 of 16x16
# (3 times) and 16 of 4x4 (14 times). PNG width and height are the IHDR's first 8 bytes.
png_size() { od -An -tu4 --endian=big -j16 -N8 "$1" | tr -s ' ' | sed 's/^ //;s/ /x/'; }
expect visualize 0 "filters.png: filters of layer0 \(conv2d 5x5 ->6 pad 2x2\).*features_0_layer0.png: layer0 conv2d 5x5 ->6 pad 2x2: 6 maps of 16x16 .*features_1_layer3.png: layer3 conv2d 5x5 ->16: 16 maps of 4x4 $" -- \
  bash -c "'$cli' visualize --checkpoint '$tmp/img.safetensors' --image '$images/images/bar/bar_0.png' \
    --out '$tmp/vis/new' | tr '\n' ' '"
written="$(ls "$tmp/vis/new" | wc -l) $(for f in filters features_0_layer0 features_1_layer3; do
  png_size "$tmp/vis/new/$f.png"; done 2>&1 | tr '\n' ' ')"
expect visualize-pngs 0 "^3 124x82 148x98 230x230 $" -- echo "$written"
expect visualize-needs-out 2 "--out: required" -- \
  "$cli" visualize --checkpoint "$tmp/img.safetensors" --image "$images/images/bar/bar_0.png"
expect visualize-not-an-image 1 "error: .*/disc/README.txt: not a readable image" -- \
  "$cli" visualize --checkpoint "$tmp/img.safetensors" --image "$images/images/disc/README.txt" --out "$tmp/vis"
printf '%s\n' 'model sequential' 'layer flatten' 'layer linear out_features=3' >"$tmp/noconv.txt"
"$cli" train "${folder_run[@]}" --model "$tmp/noconv.txt" --epochs 1 --save "$tmp/noconv.safetensors" >/dev/null
expect visualize-no-convolution 1 "error: $tmp/noconv.safetensors: the model has no convolution" -- \
  "$cli" visualize --checkpoint "$tmp/noconv.safetensors" --image "$images/images/bar/bar_0.png" --out "$tmp/vis"
# train --report: the page after the last epoch, with every section and its four pictures
# (filters, the input, two feature-map grids); a file in the folder's place is refused up front.
expect train-report 0 "^ok$" -- bash -c "'$cli' train ${folder_run[*]} --epochs 2 --val-split 0.25 \
    --report '$tmp/report' >/dev/null && f='$tmp/report/index.html' &&
  grep -q 'id=\"latest\">Epoch 2:' \$f && grep -q 'id=\"grad-norm-chart\"' \$f &&
  grep -q 'id=\"confusion\"' \$f && grep -q '<th>stripes</th>' \$f &&
  [[ \$(grep -o 'src=\"data:image/png;base64,' \$f | wc -l) -eq 4 ]] && echo ok"
expect train-report-is-a-file 1 "^convnet train: error: --report $tmp/noconv.txt: is a file; the report is written into a folder$" -- \
  "$cli" train "${folder_run[@]}" --epochs 1 --report "$tmp/noconv.txt"
test_acc=$("$cli" train "${folder_run[@]}" --epochs 2 --json --save "$tmp/img2.safetensors" 2>/dev/null |
  tail -1 | sed 's/.*"test_acc": \([0-9.]*\).*/\1/')
expect eval-matches-training 0 "\"accuracy\": $test_acc, " -- \
  "$cli" eval --checkpoint "$tmp/img2.safetensors" --json
expect eval-text 0 "image folder.*precision +recall +f1 +support.*bar .*macro avg.*confusion matrix.*0 bar " -- \
  bash -c "'$cli' eval --checkpoint '$tmp/img2.safetensors' --data '$images/images' | tr '\n' ' '"
expect eval-bad-split 2 "--split: expected test or train, got 'dev'" -- \
  "$cli" eval --checkpoint "$tmp/img2.safetensors" --split dev
expect eval-other-classes 1 "classes differ from those .* was trained on" -- \
  bash -c "mkdir -p '$tmp/other/a' '$tmp/other/b' '$tmp/other/c' && \
    cp '$images/images/bar/bar_0.png' '$tmp/other/a/' && cp '$images/images/bar/bar_1.png' '$tmp/other/b/' && \
    cp '$images/images/bar/bar_2.png' '$tmp/other/c/' && \
    '$cli' eval --checkpoint '$tmp/img2.safetensors' --data '$tmp/other'"
expect bad-val-split 2 "--val-split: expected a fraction in \[0, 1\), got 1.5" -- \
  "$cli" train --val-split 1.5

# Export: a checkpoint trained on the image folders as ONNX (its first bytes: ir_version 7, then
# producer_name "convnet"; tests/onnx/test_onnx.py runs such files in ONNX Runtime), and the
# errors for a missing checkpoint, another format, no --out and an unwritable file.
printf '%s\n' 'model sequential' 'layer conv2d out_channels=2 kernel=3' 'layer relu' \
  'layer flatten' 'layer linear out_features=3' >"$tmp/small.txt"
expect export-train 0 "saved $tmp/small.safetensors" -- \
  "$cli" train --data "$tmp/folders" --image-size 1x8x8 --model "$tmp/small.txt" \
    --epochs 1 --batch 4 --threads 1 --save "$tmp/small.safetensors"
expect export-onnx 0 "wrote $tmp/small.onnx \(ONNX opset 13\)" -- \
  "$cli" export --checkpoint "$tmp/small.safetensors" --format onnx --out "$tmp/small.onnx"
expect export-onnx-magic 0 "^08 07 12 07 63 6f 6e 76 6e 65 74" -- \
  bash -c "od -An -tx1 -N11 '$tmp/small.onnx' | sed 's/^ //'"
expect export-missing 1 "export: error: $tmp/none.safetensors: cannot open: No such file" -- \
  "$cli" export --checkpoint "$tmp/none.safetensors" --out "$tmp/none.onnx"
expect export-format 2 "--format: expected onnx, got 'tflite'" -- \
  "$cli" export --checkpoint "$tmp/small.safetensors" --format tflite --out "$tmp/x"
expect export-no-out 2 "--out: required" -- "$cli" export --checkpoint "$tmp/small.safetensors"
expect export-unwritable 1 "export: error: .*$tmp/no/such/dir/m.onnx" -- \
  "$cli" export --checkpoint "$tmp/small.safetensors" --out "$tmp/no/such/dir/m.onnx"

# A checkpoint written before checksums still loads, with one warning saying what it lacks.
v1=$(cd "$(dirname "$0")/../model/fixtures" && pwd)/checkpoint-v1.safetensors
expect checkpoint-v1-warning 0 "^convnet export: warning: $v1: a convnet.checkpoint/1 file, written before checksums" -- \
  bash -c "'$cli' export --checkpoint '$v1' --format onnx --out '$tmp/v1.onnx' 2>&1 >/dev/null"
# One flipped bit in a weight is found and named (it used to load and evaluate to a loss of 1e36).
expect checkpoint-flipped-bit 1 "error: $tmp/flipped.safetensors: tensor '.*': checksum mismatch \(CRC-32 expected [0-9a-f]+, got [0-9a-f]+\): its data is corrupt" -- \
  bash -c "cp '$tmp/small.safetensors' '$tmp/flipped.safetensors' && size=\$(stat -c %s '$tmp/flipped.safetensors') &&
    printf '\\x7f' | dd of='$tmp/flipped.safetensors' bs=1 seek=\$((size - 3)) conv=notrunc 2>/dev/null &&
    '$cli' eval --checkpoint '$tmp/flipped.safetensors' --data '$tmp/folders'"

# Regression from the command line: a train/ and test/ folder of images with targets.csv.
mkdir -p "$tmp/reg/train" "$tmp/reg/test"
for split in train test; do
  echo "file,size,tilt" >"$tmp/reg/$split/targets.csv"
  i=0
  for f in "$images"/images/*/*.png; do
    cp "$f" "$tmp/reg/$split/$(basename "$f")"
    echo "$(basename "$f"),$i,$((i % 3 - 1)).5" >>"$tmp/reg/$split/targets.csv"
    i=$((i + 1))
  done
done
printf 'model sequential\nlayer flatten\nlayer linear out_features=2\n' >"$tmp/reg2.txt"
printf 'model sequential\nlayer flatten\nlayer linear out_features=3\n' >"$tmp/reg3.txt"
expect regression-train 0 "epoch 2/2  train loss [0-9.]+  test loss [0-9.]+ mse [0-9.e+]+ mae [0-9.e+]+ r2 -?[0-9.]+" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --epochs 2 --batch 4 \
    --normalize-targets --loss huber --huber-delta 0.5 --save "$tmp/reg.safetensors" --log "$tmp/reg.csv" --quiet
expect regression-report 0 "id=\"predictions\".*id=\"scatter-1\".*id=\"residual-histogram\"" -- \
  bash -c "'$cli' train --data '$tmp/reg' --image-size 1x8x8 --model '$tmp/reg2.txt' --epochs 1 --batch 4 \
    --report '$tmp/reg-report' --quiet >/dev/null && tr '\n' ' ' <'$tmp/reg-report/index.html'"
# A classifier trained by MSE on one-hot rows: eval reports the loss it trained with.
expect classifier-mse-eval-loss 0 "^same$" -- \
  bash -c "'$cli' train --data '$tmp/folders' --image-size 1x8x8 --model '$tmp/small.txt' --loss mse \
      --epochs 1 --batch 4 --threads 1 --json --save '$tmp/mse.st' 2>/dev/null | tail -1 >'$tmp/mse.json' &&
    '$cli' eval --checkpoint '$tmp/mse.st' --json >'$tmp/mse-eval.json' &&
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))[\"test_loss\"]; b=json.load(open(sys.argv[2]))[\"loss\"]; print(\"same\" if abs(a-b)<1e-5 else (a,b))' '$tmp/mse.json' '$tmp/mse-eval.json'"
# Resuming a regression run takes its loss, target and normalisation from the checkpoint: the
# bytes of the unbroken run.
reg_run=(--data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --batch 4 --schedule constant
  --normalize-targets --loss l1 --optimizer adam --threads 1 --quiet)
expect regression-resume-bit-identical 0 "^same$" -- \
  bash -c "'$cli' train ${reg_run[*]@Q} --epochs 1 --save '$tmp/reg-a.st' >/dev/null &&
    '$cli' train --resume '$tmp/reg-a.st' --epochs 3 --save '$tmp/reg-b.st' >/dev/null &&
    '$cli' train ${reg_run[*]@Q} --epochs 3 --save-every 1 --save '$tmp/reg-c.st' >/dev/null &&
    cmp '$tmp/reg-b.st' '$tmp/reg-c.st' && echo same"
expect regression-log-header 0 "^epoch,learning_rate,train_loss,val_loss,val_mse,val_mae,val_r2,test_loss,test_mse,test_mae,test_r2" -- \
  head -1 "$tmp/reg.csv"
expect regression-eval 0 "regression\).*size .*tilt .*worst 2 \(mean absolute error\).*size: predicted" -- \
  bash -c "'$cli' eval --checkpoint '$tmp/reg.safetensors' --worst 2 | tr '\n' ' '"
expect regression-eval-json 0 '^\{"images": [0-9]+, "loss": [0-9.]+, "mse": .*"outputs": \[\{"name": "size"' -- \
  "$cli" eval --checkpoint "$tmp/reg.safetensors" --json
expect regression-predict 0 "bar_0.png:  size -?[0-9.e+-]+  tilt -?[0-9.e+-]+$" -- \
  "$cli" predict --checkpoint "$tmp/reg.safetensors" "$images/images/bar/bar_0.png"
expect regression-outputs-mismatch 1 "error: model [^ ]*/reg3.txt on [^ ]*/reg: the model's output is 3 values per sample \(4x3\) but the data has 2 targets \(size, tilt\): its last layer needs 2 outputs" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg3.txt" --epochs 1 --batch 4
expect regression-cross-entropy 2 "--loss cross-entropy: compares class scores with labels; the target here is values" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --loss cross-entropy
expect regression-bad-loss 2 "--loss: unknown loss 'hinge': expected one of cross-entropy\|mse\|l1\|huber" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --loss hinge
expect regression-noise-needs-input 2 "--noise: corrupts the input of an autoencoder \(--target input\)" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --noise 0.1
expect regression-monitor-acc 1 "val_acc is a classification figure" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --val-split 0.25 --early-stop 2 --monitor val_acc
expect regression-save-best-mae 0 "best val_mae [0-9.e+-]+ at epoch 1: saved" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt" --epochs 1 --batch 4 \
    --val-split 0.25 --monitor val_mae --save-best "$tmp/reg-best.safetensors"
sed -i '3s/,1,/,x1,/' "$tmp/reg/train/targets.csv"
expect regression-not-a-number 1 "error: $tmp/reg/train/targets.csv:3: column 2 \(size\) is 'x1', not a finite number" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt"
sed -i '3d' "$tmp/reg/train/targets.csv"
expect regression-missing-row 1 "error: $tmp/reg/train/[a-z_0-9]+.png: has no row in $tmp/reg/train/targets.csv" -- \
  "$cli" train --data "$tmp/reg" --image-size 1x8x8 --model "$tmp/reg2.txt"
echo "nothere.png,1,2" >>"$tmp/reg/test/targets.csv"
expect regression-missing-file 1 "error: $tmp/reg/test/targets.csv: row [0-9]+: $tmp/reg/test/nothere.png is not a file" -- \
  "$cli" eval --checkpoint "$tmp/reg.safetensors"
# An autoencoder: the input is the target; predict writes the reconstruction.
printf 'model sequential\nlayer conv2d out_channels=4 kernel=3 stride=2 pad=1\nlayer relu\nlayer conv_transpose2d out_channels=1 kernel=3 stride=2 pad=1 output_padding=1\nlayer sigmoid\n' >"$tmp/ae.txt"
expect autoencoder-train 0 "epoch 2/2  train loss [0-9.]+  test loss [0-9.]+ mse" -- \
  "$cli" train --data "$tmp/folders" --image-size 1x8x8 --model "$tmp/ae.txt" --target input --noise 0.1 \
    --optimizer adam --lr 0.01 --epochs 2 --batch 4 --save "$tmp/ae.safetensors" --quiet
expect autoencoder-eval 0 "reconstruction\).*pixels " -- \
  bash -c "'$cli' eval --checkpoint '$tmp/ae.safetensors' | tr '\n' ' '"
expect autoencoder-predict 0 "bar_0.png: $tmp/recon/bar_0.reconstruction.png  mse [0-9.e-]+$" -- \
  "$cli" predict --checkpoint "$tmp/ae.safetensors" --out "$tmp/recon" "$images/images/bar/bar_0.png"
expect autoencoder-png 0 "PNG image data, 8 x 8" -- file "$tmp/recon/bar_0.reconstruction.png"
expect autoencoder-shape 1 "reconstructing the input needs an output of the input's shape 1x8x8 per sample, but the model's output is 4x2" -- \
  "$cli" train --data "$tmp/folders" --image-size 1x8x8 --model "$tmp/reg2.txt" --target input --batch 4

expect gradcheck 0 "^PASS: largest abs error" -- "$cli" gradcheck --model lenet --samples 8
expect gradcheck-fails-on-tight-tolerance 1 "FAIL" -- "$cli" gradcheck --model lenet --samples 4 --atol 0 --rtol 1e-15

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
