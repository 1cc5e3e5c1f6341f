#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) over the committed seeds in corpus/<target>/,
# with AddressSanitizer and UBSan (the build-fuzz configuration in .ci/run), an allocation limit
# (an input must not make a parser allocate more than 1 GiB) and a per-input time limit. New
# inputs go to a scratch corpus; a crash is saved to OUT/crash-<target>-* and fails the run.
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS] [OUT]
set -u
build=$1
seconds=${2:-60}
out=${3:-$build/fuzz-artifacts}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
failed=0
for target in idx cifar image spec checkpoint; do
  work=$(mktemp -d)
  echo "== fuzz_$target for ${seconds}s (seeds: $here/corpus/$target)"
  TMPDIR=$work "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$out/crash-$target-" "$work" "$here/corpus/$target" 2>"$out/fuzz_$target.log"
  rc=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)" \
    "$out/fuzz_$target.log" | tr '\n' ' '
  echo
  if [[ $rc -ne 0 ]]; then
    failed=1
    echo "FAIL fuzz_$target (exit $rc): $out/fuzz_$target.log"
    grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$out/fuzz_$target.log" | head -20
  fi
  rm -rf "$work"
done
exit $failed
