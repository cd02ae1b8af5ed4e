# bench/args.sh — the benchmarks' command line (sourced first, before lib.sh makes
# scratch space): --help prints the script's header comment; anything else is refused,
# since every knob is an environment variable.  Usage: . bench/args.sh; bench_args "$0" "$@"
# Then sets HERE (bench/), REPO (the checkout) and exports BOOTSTORM and LOADGEN,
# defaulting to the release build's binaries.
bench_args() {
  local me=$1; shift
  case "${1:-}" in
    -h|--help) sed -n '2,/^set -u$/p' "$me" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "bench/$(basename "$me"): no arguments (knobs are environment variables; --help)" >&2; exit 2 ;;
  esac
  HERE=$(cd "$(dirname "$me")" && pwd)
  REPO=$(cd "$HERE/.." && pwd)
  export BOOTSTORM=${BOOTSTORM:-$REPO/build/release/bin/bootstorm}
  export LOADGEN=${LOADGEN:-$REPO/build/release/bin/bootstorm-load}
}
