#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) over the committed seeds in corpus/<target>/,
# JOBS at a time (default 2), with AddressSanitizer and UBSan (the build-fuzz configuration in
# .ci/run), an allocation limit (an input must not make a parser allocate more than 1 GiB) and a
# per-input time limit. New inputs go to a scratch corpus; a crash is saved to
# OUT/crash-<target>-* and fails the run.
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS] [OUT] [JOBS]
set -u
build=$1
seconds=${2:-60}
out=${3:-$build/fuzz-artifacts}
jobs=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

fuzz() {  # fuzz TARGET: runs it, then prints its summary; exit status 0 when nothing was found
  local target=$1 work rc
  work=$(mktemp -d)
  TMPDIR=$work "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$out/crash-$target-" "$work" "$here/corpus/$target" \
    2>"$out/fuzz_$target.log"
  rc=$?
  rm -rf "$work"
  {
    echo "== fuzz_$target, ${seconds}s: $(grep -E "^stat::(number_of_executed_units|new_units_added)" \
      "$out/fuzz_$target.log" | tr -s ' ' | tr '\n' ' ')"
    if [[ $rc -ne 0 ]]; then
      echo "FAIL fuzz_$target (exit $rc): $out/fuzz_$target.log"
      grep -E "ERROR|SUMMARY|Test unit written|runtime error" "$out/fuzz_$target.log" | head -20
    fi
  } >"$out/fuzz_$target.summary"
  return $rc
}

failed=0
pids=()
names=()
for target in idx cifar image spec checkpoint targets image_list; do
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do sleep 1; done
  fuzz "$target" &
  pids+=($!)
  names+=("$target")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
  cat "$out/fuzz_${names[$i]}.summary"
done
exit $failed
