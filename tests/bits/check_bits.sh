#!/usr/bin/env bash
# Same bits: trains the recorded runs with a build's convnet and compares every tensor of every
# checkpoint (weights, buffers and optimizer state, by sha256) and eval's report with the values
# recorded in tests/bits/recorded.txt. A refactor of the training engine must leave all of them
# byte-identical.
#
#   tests/bits/check_bits.sh CONVNET [full|quick]            compare (exit 77 = skipped: nothing
#                                                            recorded for this build and CPU)
#   tests/bits/check_bits.sh CONVNET [full|quick] --record   print the records for this build and CPU
#
# full is the refactor's contract: one epoch of 6000 images (1000 evaluated) for each run below,
# about 9 minutes on 2 cores. quick, which ctest runs, is the same nine runs on 256 images.
#
# Bits depend on the kernels the CPU runs (AVX-512, AVX2) and on the compiler and its flags, so
# each record is keyed by both: "key <compiler> <build type> <isa>". A build or CPU with no
# record is skipped, saying which key it looked for.
set -euo pipefail
convnet=$1
size=${2:-quick}
mode=${3:-check}
case $size in
  full) limits=(--train-limit 6000 --test-limit 1000) eval_limit=1000 ;;
  quick) limits=(--train-limit 256 --test-limit 256) eval_limit=256 ;;
  *) echo "check_bits.sh: the size is full or quick, not '$size'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
recorded="$here/recorded.txt"
data=/usr/share/datasets/fashion-mnist
if [[ ! -d $data ]]; then
  echo "SKIP: Fashion-MNIST is not installed at $data (apt-get install dataset-fashion-mnist)"
  exit 77
fi

build=$(dirname "$convnet")
cache=$build/CMakeCache.txt
compiler=unknown build_type=unknown
if [[ -f $cache ]]; then
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")
  compiler=$(basename "$("$cxx" -dumpfullversion 2>/dev/null >/dev/null && echo "$cxx")")-$("$cxx" -dumpfullversion 2>/dev/null || echo unknown)
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")
  if grep -q '^CONVNET_SANITIZE:[A-Z]*=.\+' "$cache"; then build_type="$build_type+sanitize"; fi
fi
isa=x86-64
if grep -qw avx512f /proc/cpuinfo; then isa=x86-64-v4
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then isa=x86-64-v3
fi
key="key $size $compiler ${build_type:-none} $isa"

# Before training anything: a build with no record (a sanitizer's, another compiler's) has
# nothing to compare with.
if [[ $mode != --record ]] && ! grep -qxF "$key" "$recorded"; then
  echo "SKIP: no bits are recorded for '$key' in $recorded (record them from the pre-refactor commit with --record)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name | train flags
runs=(
  "lenet-sgd-t2|--model lenet --threads 2"
  "lenet-adam-t2|--model lenet --threads 2 --optimizer adam"
  "lenet-sgd-t1|--model lenet --threads 1"
  "vgg-small-sgd-t2|--model vgg-small --threads 2"
  "vgg-small-adam-t2|--model vgg-small --threads 2 --optimizer adam"
  "vgg-small-sgd-t1|--model vgg-small --threads 1"
  "resnet-small-sgd-t2|--model resnet-small --threads 2"
  "resnet-small-adam-t2|--model resnet-small --threads 2 --optimizer adam"
  "resnet-small-sgd-t1|--model resnet-small --threads 1"
)

tensor_hashes() {  # every tensor of a safetensors file: "name sha256"
  python3 - "$1" <<'PY'
import hashlib, json, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
data = blob[8 + n:]
for name in sorted(k for k in header if k != "__metadata__"):
    begin, end = header[name]["data_offsets"]
    print(name, hashlib.sha256(data[begin:end]).hexdigest())
PY
}

{
  echo "$key"
  for run in "${runs[@]}"; do
    name=${run%%|*}
    flags=${run#*|}
    # shellcheck disable=SC2086
    "$convnet" train $flags --seed 1 --epochs 1 "${limits[@]}" \
      --schedule constant --save "$work/$name.safetensors" >"$work/$name.train" 2>&1 ||
      { echo "train failed for $name:" >&2; cat "$work/$name.train" >&2; exit 1; }
    tensor_hashes "$work/$name.safetensors" | sed "s|^|$name tensor |"
    "$convnet" eval --checkpoint "$work/$name.safetensors" --limit "$eval_limit" --threads 2 --json \
      >"$work/$name.eval" 2>&1 || { echo "eval failed for $name:" >&2; cat "$work/$name.eval" >&2; exit 1; }
    echo "$name eval $(sha256sum <"$work/$name.eval" | cut -d' ' -f1)"
  done
} >"$work/now.txt"

if [[ $mode == --record ]]; then
  cat "$work/now.txt"
  exit 0
fi

# The block of records under this key, up to the next key.
awk -v key="$key" '$0 == key {on = 1; print; next} /^key / {on = 0} on' "$recorded" >"$work/then.txt"
# A run whose eval line the record leaves out is compared on its tensors alone: the record of a
# CPU where an intended change of evaluation (BatchNorm folded into the convolutions at
# Mode::Eval, which changes the last bits of resnet-small's report) could not be recorded again.
for run in "${runs[@]}"; do
  name=${run%%|*}
  grep -q "^$name eval " "$work/then.txt" || sed -i "/^$name eval /d" "$work/now.txt"
done
if diff -u "$work/then.txt" "$work/now.txt" >"$work/diff.txt"; then
  echo "same bits: $(($(wc -l <"$work/now.txt") - 1)) tensors and reports of ${#runs[@]} runs match ($key)"
else
  echo "FAIL: bits differ from the record ($key):"
  cat "$work/diff.txt"
  exit 1
fi
