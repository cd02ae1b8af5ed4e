#!/usr/bin/env bash
# The live dashboard in a real browser (headless Chromium from Debian's chromium
# package): runs tests/browser/dashboard_test.sh, which ends with its own
# "N passed, N failed" line.
exec bash "$(dirname "$0")/../browser/dashboard_test.sh" "$@"
