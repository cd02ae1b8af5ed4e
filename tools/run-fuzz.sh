#!/usr/bin/env bash
# tools/run-fuzz.sh SECONDS BIN...: runs each libFuzzer target for SECONDS with its
# corpus (tests/fuzz/corpus/<name>, seeded from the real-client fixtures if present).
set -eu
secs=$1; shift
for bin in "$@"; do
  name=$(basename "$bin")
  corpus=build/fuzz/corpus/$name
  mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus/$name" ] && cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  dict=""; [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
  echo "== $name for ${secs}s"
  "$bin" -max_total_time="$secs" -print_final_stats=1 $dict "$corpus" 2>&1 | tail -n 12
done
