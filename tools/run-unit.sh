#!/usr/bin/env bash
# Runs every Criterion unit binary given; prints each one's own summary and a total.
set -u
pass=0; fail=0; failed=()
for t in "$@"; do
  echo "== $t"
  if "$t" --jobs "${UNIT_JOBS:-2}" --short-filename; then pass=$((pass+1)); else fail=$((fail+1)); failed+=("$t"); fi
done
echo "unit suites: $pass passed, $fail failed ${failed[*]:-}"
[ "$fail" -eq 0 ]
