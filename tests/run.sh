#!/usr/bin/env bash
# The test suite: ctest over a build folder, then each reason a test gave for skipping all or part
# of its checks (ctest itself shows only "Skipped", or nothing for a check skipped inside a test
# that passed). Usage: tests/run.sh [BUILD_DIR [CTEST_ARGS...]]; exits with ctest's status.
set -u
build=${1:-build}
shift || true
# As many tests at once as there are cores ($CONVNET_TEST_JOBS to choose); later arguments win.
ctest --test-dir "$build" --output-on-failure --parallel "${CONVNET_TEST_JOBS:-$(nproc)}" "$@"
rc=$?
log="$build/Testing/Temporary/LastTest.log"
if [[ -f $log ]]; then
  # A script's own "SKIP: reason" lines, and GoogleTest's "FILE:LINE: Skipped" followed by the
  # reason GTEST_SKIP() gave.
  awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 }
       /^SKIP/ { print "skipped in " name ": " $0; n++ }
       /: Skipped$/ { reason = ""; if ((getline line) > 0) reason = line
                      print "skipped " name ": " reason; n++ }
       END { if (n == 0) print "no test skipped any check" }' "$log"
fi
exit $rc
