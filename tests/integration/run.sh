#!/usr/bin/env bash
# Runs every integration suite (tests/integration/test_*.sh), once per io
# backend where the suite says so, and prints the total as "N passed, N failed".
set -u
cd "$(dirname "$0")"
: "${BOOTSTORM:?}"
total_p=0; total_f=0; failed=()
suites=${INTEGRATION_SUITES:-$(ls test_*.sh)}
for s in $suites; do
  backends="uring"
  grep -q '^# backends: both' "$s" && backends="uring epoll"
  # INTEGRATION_BACKENDS=uring (make asan) runs each suite once
  [ -n "${INTEGRATION_BACKENDS:-}" ] && backends=$(for b in $backends; do case " $INTEGRATION_BACKENDS " in *" $b "*) echo "$b";; esac; done)
  [ -n "$backends" ] || backends="uring"
  for b in $backends; do
    echo "== $s ($b)"
    t0=$SECONDS
    out=$(BACKEND=$b timeout 600 bash "$s" 2>&1); rc=$?
    echo "$out"
    echo "   ($s on $b: $((SECONDS - t0)) s)"
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n1)
    if [ -n "$line" ]; then
      p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
    else
      p=0; f=1; echo "  (suite $s ended without a summary line, rc=$rc)"
    fi
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    total_p=$((total_p+p)); total_f=$((total_f+f))
    [ "$f" -gt 0 ] && failed+=("$s/$b")
  done
done
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
