#!/usr/bin/env bash
# The training report in a real browser: a 3-epoch lenet run writes DIR/index.html; headless
# Chromium (Debian's chromium) renders it, and its DOM must hold every chart and section, with
# the pictures decoded; a screenshot is kept in OUT. `convnet visualize` writes its PNG files.
# Exits 77 (ctest's SKIP_RETURN_CODE), saying so, where chromium is not installed.
# Usage: test_report_chromium.sh path/to/convnet OUT
set -u
cli=$1
out=$2
data=/usr/share/datasets/fashion-mnist
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
  echo "SKIP: chromium is not installed (apt-get install chromium; tools/install-deps.sh does)"
  exit 77
fi
if [[ ! -d $data ]]; then
  echo "SKIP: $data is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
failed=0
check() {  # check NAME PATTERN FILE
  if grep -qE -- "$2" "$3"; then echo "ok: $1"; else echo "FAIL: $1 (no /$2/ in $3)"; failed=1; fi
}

"$cli" train --epochs 3 --train-limit 2000 --test-limit 500 --val-split 0.1 --threads 2 \
  --report "$tmp/report" --save "$tmp/run.safetensors" --quiet >"$tmp/train.log" 2>&1 ||
  { echo "FAIL: training"; cat "$tmp/train.log"; exit 1; }
page="file://$tmp/report/index.html"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$tmp/profile" --window-size=1280,3400)
timeout 120 "$browser" "${flags[@]}" --dump-dom "$page" >"$tmp/dom.html" 2>"$tmp/chromium.log"
timeout 120 "$browser" "${flags[@]}" --screenshot="$out/report.png" "$page" >/dev/null 2>>"$tmp/chromium.log"
cp "$tmp/report/index.html" "$out/report.html"

# The rendered DOM: every section and chart, three epochs plotted, the pictures as images.
for id in loss-chart accuracy-chart lr-chart grad-norm-chart confusion filters feature-maps \
  summary config; do
  check "section $id" "id=\"$id\"" "$tmp/dom.html"
done
check "three epochs in the latest line" "id=\"latest\">Epoch 3:" "$tmp/dom.html"
check "validation curves" "validation accuracy" "$tmp/dom.html"
check "Fashion-MNIST class names in the confusion matrix" "<th>Ankle boot</th>" "$tmp/dom.html"
check "the model summary" "Total params: 61706" "$tmp/dom.html"
[[ $(grep -o "<polyline" "$tmp/dom.html" | wc -l) -ge 10 ]] && echo "ok: curves drawn" ||
  { echo "FAIL: fewer than 10 curves in the DOM"; failed=1; }
[[ $(grep -o 'src="data:image/png;base64,' "$tmp/dom.html" | wc -l) -eq 4 ]] &&
  echo "ok: 4 inline pictures (filters, input, 2 feature-map grids)" ||
  { echo "FAIL: expected 4 inline pictures"; failed=1; }
if grep -qiE "uncaught|error while|failed to load" "$tmp/chromium.log"; then
  echo "FAIL: Chromium reported errors:"; grep -iE "uncaught|error while|failed to load" "$tmp/chromium.log"
  failed=1
fi
# The screenshot is a real picture of the page (a PNG of the window's size).
if [[ -s $out/report.png ]] && head -c 8 "$out/report.png" | od -An -tx1 | grep -q "89 50 4e 47"; then
  echo "ok: screenshot $out/report.png"
else
  echo "FAIL: no screenshot"; failed=1
fi

# visualize: the filters and one feature-map grid per convolution.
"$cli" visualize --checkpoint "$tmp/run.safetensors" --image "$(dirname "$0")/../data/images/bar/bar_0.png" \
  --out "$out/visualize" >"$tmp/vis.log" 2>&1
check "visualize wrote the filters" "filters.png: filters of layer0" "$tmp/vis.log"
check "visualize wrote layer3's maps" "features_1_layer3.png: layer3 conv2d 5x5 ->16: 16 maps of 10x10" "$tmp/vis.log"
[[ $(ls "$out"/visualize/*.png 2>/dev/null | wc -l) -eq 3 ]] && echo "ok: 3 PNG files" ||
  { echo "FAIL: expected 3 PNG files in $out/visualize"; failed=1; }
exit $failed
