#!/usr/bin/env bash
# What `make test` needs from the system, beside Python packages: Debian's chromium for the browser
# tests (driven by Playwright; never a downloaded browser) and apt's package lists, without which
# `apt-get download dataset-fashion-mnist` (the offline Fashion-MNIST source) finds nothing.
# As root, missing pieces are installed; as any other user, the script says the one command to run,
# and the tests that need the missing piece fail with the same advice (they never skip).
set -uo pipefail
APT_LISTS=${APT_LISTS:-/var/lib/apt/lists}  # both overridable, for the test of this script
CHROMIUM=${CHROMIUM:-chromium}
lists_present() { compgen -G "$APT_LISTS/*_Packages*" >/dev/null; }
command -v apt-get >/dev/null || {
  echo "note: no apt-get here: the browser tests need Chromium at /usr/bin/chromium (or on PATH), and"
  echo "      Fashion-MNIST needs its HTTPS mirror."
  exit 0
}
need_lists=0; need_chromium=0
lists_present || need_lists=1
command -v "$CHROMIUM" >/dev/null || need_chromium=1
[ $need_lists = 0 ] && [ $need_chromium = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  [ $need_lists = 1 ] && echo "note: apt's package lists are missing, so the offline Fashion-MNIST source" \
    "finds nothing and its tests will fail. Run once: sudo apt-get update"
  [ $need_chromium = 1 ] && echo "note: Chromium is not installed, so the browser tests will fail." \
    "Run once: sudo apt-get install -y chromium"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ $need_lists = 1 ]; then
  echo "apt-get update (the package lists are missing)"
  apt-get update -qq
fi
if [ $need_chromium = 1 ]; then
  echo "apt-get install chromium (for the browser tests)"
  # stale package lists can name files the archive no longer has: refresh them once and retry
  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } \
    >/dev/null 2> >(grep -v "^debconf: delaying" >&2) ||
    echo "warning: apt-get could not install chromium (see above); the browser tests will fail"
fi
exit 0
