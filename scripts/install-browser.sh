#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser) when /usr/bin/chromium is
# missing. Idempotent: exits 0 at once when the browser is already there. Needs root and apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: apt-get not found; install Chromium by hand" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh: must run as root to install Chromium with apt-get" >&2
    exit 1
fi
echo "Installing Chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
test -x /usr/bin/chromium
