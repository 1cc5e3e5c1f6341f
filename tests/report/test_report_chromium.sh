#!/usr/bin/env bash
# The training report in a real browser: a 3-epoch lenet run writes DIR/index.html; headless
# Chromium (Debian's chromium) renders it. Its DOM must hold every chart and section; a copy of
# the page with render_check.html appended (the report itself has no scripts) must show every
# inline picture decoded and every chart line drawn, with nothing on the browser's console; and
# a screenshot of the whole page is kept in OUT, its path printed.
# Exits 77 (ctest's SKIP_RETURN_CODE), saying so, where chromium or the data is not installed.
# Usage: test_report_chromium.sh path/to/convnet OUT
set -u
cli=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
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
  --report "$tmp/report" --quiet >"$tmp/train.log" 2>&1 ||
  { echo "FAIL: training"; cat "$tmp/train.log"; exit 1; }
cp "$tmp/report/index.html" "$out/report.html"
# No network, no extensions, a throw-away profile; --virtual-time-budget lets the page finish
# loading (and the check run) before the DOM is dumped.
chromium() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$tmp/profile" --enable-logging=stderr --v=0 --virtual-time-budget=10000 "$@"
}

# The page as it is: every section and chart, three epochs plotted, the pictures inline.
chromium --dump-dom "file://$tmp/report/index.html" >"$tmp/dom.html" 2>"$tmp/chromium.log"
for id in loss-chart accuracy-chart lr-chart grad-norm-chart confusion filters feature-maps \
  summary config; do
  check "section $id" "id=\"$id\"" "$tmp/dom.html"
done
check "three epochs in the latest line" "id=\"latest\">Epoch 3:" "$tmp/dom.html"
check "validation curves" "validation accuracy" "$tmp/dom.html"
check "Fashion-MNIST class names in the confusion matrix" "<th>Ankle boot</th>" "$tmp/dom.html"
check "the model summary" "Total params: 61706" "$tmp/dom.html"
check "gradient legend names the layers" ">layer11 linear</text>" "$tmp/dom.html"
x_ticks=$(grep -oE 'class="x-tick"[^>]*></line><text[^>]*>[0-9.]+</text>' "$tmp/dom.html" |
  sed 's/.*>\([0-9.]*\)<\/text>/\1/' | tr '\n' ' ')
[[ $x_ticks == "1 2 3 1 2 3 1 2 3 1 2 3 " ]] && echo "ok: epochs 1 2 3 under each of the 4 charts" ||
  { echo "FAIL: x-axis ticks: $x_ticks (want 1 2 3 under each of the 4 charts)"; failed=1; }
[[ $(grep -o 'src="data:image/png;base64,' "$tmp/dom.html" | wc -l) -eq 4 ]] &&
  echo "ok: 4 inline pictures (filters, input, 2 feature-map grids)" ||
  { echo "FAIL: expected 4 inline pictures"; failed=1; }
if grep -q ":CONSOLE" "$tmp/chromium.log"; then
  echo "FAIL: the report wrote to the browser's console:"; grep ":CONSOLE" "$tmp/chromium.log"
  failed=1
else
  echo "ok: nothing on the console"
fi

# What only rendering tells (at the screenshot's width): pictures decoded, lines drawn (3 loss,
# 3 accuracy, 1 learning rate, 5 layers with parameters), nothing on the console but the check's.
sed '/<\/body>/e cat '"$here"'/render_check.html' "$tmp/report/index.html" >"$tmp/report/checked.html"
chromium --window-size=1280,800 --dump-dom "file://$tmp/report/checked.html" >"$tmp/checked.html" 2>"$tmp/checked.log"
check "rendered: pictures decoded, every line drawn" \
  'data-render-check="ok: 4 of 4 pictures decoded, 4 charts, 12 lines"' "$tmp/checked.html"
if grep ":CONSOLE" "$tmp/checked.log" | grep -qv '"render check done"'; then
  echo "FAIL: console messages while rendering:"; grep ":CONSOLE" "$tmp/checked.log"; failed=1
fi

# A screenshot of the whole page: the window as tall as the page measured above.
height=$(sed -n 's/.*data-page-height="\([0-9]*\)".*/\1/p' "$tmp/checked.html")
[[ $height -gt 0 ]] 2>/dev/null || height=4800
chromium --hide-scrollbars --window-size=1280,"$height" --screenshot="$out/report.png" \
  "file://$tmp/report/index.html" >/dev/null 2>>"$tmp/chromium.log"
if [[ -s $out/report.png ]] && head -c 8 "$out/report.png" | od -An -tx1 | grep -q "89 50 4e 47"; then
  echo "ok: screenshot (1280x$height) $out/report.png"
else
  echo "FAIL: no screenshot"; failed=1
fi
exit $failed
