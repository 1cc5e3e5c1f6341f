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
expect bad-optimizer 2 "--optimizer: expected sgd, adam, adamw or rmsprop" -- "$cli" train --optimizer lbfgs
expect missing-dir 1 "error: $tmp/none: data directory not found" -- "$cli" train --data "$tmp/none"

# Model spec files and the summary command.
models=$(cd "$(dirname "$0")/../../models" && pwd)
expect summary 0 "Total params: 61706 FLOPs per sample: forward 833040" -- \
  bash -c "'$cli' summary --model lenet | tr '\n' ' '"
expect summary-spec-file 0 "Total params: 174970" -- "$cli" summary --model "$models/resnet-small.txt"
expect summary-spec-text 0 "^model graph input=input" -- "$cli" summary --model resnet-small --spec
printf 'model sequential\nlayer conv2d out_channels=4 kernal=3\n' >"$tmp/bad.txt"
expect spec-error 1 "summary: error: $tmp/bad.txt:2:29: unknown option 'kernal' for conv2d" -- \
  "$cli" summary --model "$tmp/bad.txt"
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
  expect train-json 0 '^\{"epoch": 1, "train_loss": [0-9.]+, "train_acc": 0\.[0-9]+, "test_loss": [0-9.]+, "test_acc": 0\.[0-9]+, "seconds": [0-9.]+, "images_per_s": [0-9.]+\}$' -- \
    "$cli" train --epochs 1 --train-limit 2000 --test-limit 500 --json --threads 2
  expect train-text 0 "epoch 2/2  train loss .* test loss .* images/s" -- \
    "$cli" train --epochs 2 --train-limit 1000 --test-limit 200 --optimizer adam --batch 32

  # Resuming is exact: 2 epochs, saved, resumed to 3, gives the bytes of 3 unbroken epochs (a
  # model with BatchNorm statistics and a Dropout stream; Adam's moments and step count).
  printf '%s\n' 'model sequential' 'layer conv2d out_channels=4 kernel=3 pad=1' \
    'layer batchnorm2d' 'layer relu' 'layer maxpool2d kernel=2' 'layer dropout p=0.2' \
    'layer flatten' 'layer linear out_features=10' >"$tmp/net.txt"
  run=(--model "$tmp/net.txt" --optimizer adam --train-limit 640 --test-limit 100 --batch 32)
  expect train-save 0 "saved $tmp/a.safetensors" -- \
    "$cli" train "${run[@]}" --epochs 2 --threads 2 --save "$tmp/a.safetensors"
  expect train-resume 0 "resuming $tmp/a.safetensors after epoch 2 .*epoch 3/3 " -- \
    bash -c "'$cli' train --epochs 3 --threads 2 --resume '$tmp/a.safetensors' \
      --save '$tmp/b.safetensors' | tr '\n' ' '"
  expect train-unbroken 0 "epoch 3/3 " -- \
    "$cli" train "${run[@]}" --epochs 3 --threads 2 --save-every 1 --save "$tmp/c.safetensors"
  # Same weights, buffers, optimizer state and metadata: the same bytes.
  expect resume-bit-identical 0 "^same$" -- \
    bash -c "cmp '$tmp/b.safetensors' '$tmp/c.safetensors' && echo same"
  expect resume-past-the-end 2 "--epochs 2: $tmp/a.safetensors has already run 2 epochs" -- \
    "$cli" train --epochs 2 --resume "$tmp/a.safetensors"
  expect resume-with-model 2 "--model: not with --resume" -- \
    "$cli" train --model lenet --resume "$tmp/a.safetensors"
  head -c 12000 "$tmp/a.safetensors" >"$tmp/cut.safetensors"
  expect resume-truncated 1 "error: $tmp/cut.safetensors: truncated: the header describes" -- \
    "$cli" train --epochs 3 --resume "$tmp/cut.safetensors"
  expect resume-other-optimizer 1 "holds adam state, which cannot continue as sgd" -- \
    "$cli" train --epochs 3 --resume "$tmp/a.safetensors" --optimizer sgd
  expect classes-mismatch 1 "has output Nx5 but the data has 10 classes|has output [0-9]+x5 but the data has 10 classes" -- \
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
expect image-folder-broken 1 "error: .*/broken/truncated.png: cannot decode: " -- \
  "$cli" train --data "$tmp/badfolders"
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

expect gradcheck 0 "^PASS: largest abs error" -- "$cli" gradcheck --model lenet --samples 8
expect gradcheck-fails-on-tight-tolerance 1 "FAIL" -- "$cli" gradcheck --model lenet --samples 4 --atol 0 --rtol 1e-15

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
