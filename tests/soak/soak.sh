#!/usr/bin/env bash
# Soak test (not in CI; minutes to hours): trains a small model for EPOCHS epochs (default 200),
# killing the process with SIGKILL at random moments and resuming from its last checkpoint each
# time, then trains the same run without interruption and requires the two final checkpoints to
# be byte-identical: no kill, however timed, may lose or corrupt progress.
# Usage: tests/soak/soak.sh path/to/convnet [EPOCHS] [WORKDIR]
set -u
cli=$1
epochs=${2:-200}
work=${3:-$(mktemp -d)}
mkdir -p "$work"
spec="$work/net.txt"
printf '%s\n' 'model sequential' 'layer conv2d out_channels=4 kernel=3 pad=1' 'layer batchnorm2d' \
  'layer relu' 'layer maxpool2d kernel=2' 'layer dropout p=0.2' 'layer flatten' \
  'layer linear out_features=10' >"$spec"
run=(train --model "$spec" --optimizer adam --train-limit 512 --test-limit 64 --batch 32
  --flip --crop-padding 2 --schedule cosine --threads 2 --quiet --progress-every 0)
ckpt="$work/killed.safetensors"
rm -f "$ckpt" "$ckpt.tmp"
kills=0
while :; do
  if [[ -f $ckpt ]]; then
    "$cli" train --resume "$ckpt" --epochs "$epochs" --save "$ckpt" --save-every 1 --threads 2 \
      --quiet --progress-every 0 >/dev/null 2>>"$work/errors.log" &
  else
    "$cli" "${run[@]}" --epochs "$epochs" --save "$ckpt" --save-every 1 >/dev/null 2>>"$work/errors.log" &
  fi
  pid=$!
  sleep "0.$((RANDOM % 9 + 1))"
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    kills=$((kills + 1))
    continue
  fi
  wait "$pid"
  rc=$?
  [[ $rc -eq 0 ]] && break  # this run got to the end before its kill
  # A kill that landed just after the last epoch's checkpoint: resuming says it is complete.
  if [[ $rc -eq 2 ]] && tail -1 "$work/errors.log" | grep -q "has already run $epochs epochs"; then
    break
  fi
  echo "FAIL: a run exited $rc; see $work/errors.log"
  exit 1
done
echo "$kills kills; now the uninterrupted run"
"$cli" "${run[@]}" --epochs "$epochs" --save "$work/unbroken.safetensors" >/dev/null
if cmp -s "$ckpt" "$work/unbroken.safetensors"; then
  echo "PASS: $epochs epochs with $kills kills end on the same bytes as an uninterrupted run"
else
  echo "FAIL: $ckpt differs from $work/unbroken.safetensors"
  exit 1
fi
