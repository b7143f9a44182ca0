#!/usr/bin/env bash
# Make sure the browser tests (tests/test_browser.py) have a Chromium to drive, before `make test` starts
# its long run: EFFDL_CHROMIUM if set, else Debian's /usr/bin/chromium; when missing, install Debian's
# `chromium` package if this shell can (root and apt-get), otherwise stop with one line saying what to do.
# Playwright never downloads a browser of its own here.
set -euo pipefail
want="${EFFDL_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$want" ]; then
    exit 0
fi
if [ -n "${EFFDL_CHROMIUM:-}" ]; then
    echo "make test: EFFDL_CHROMIUM=$EFFDL_CHROMIUM is not an executable Chromium; fix it or unset it." >&2
    exit 1
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "make test: installing Debian's chromium for the browser tests (apt-get install chromium)"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
            && [ -x /usr/bin/chromium ]; then
        exit 0
    fi
    echo "make test: apt-get could not install chromium; install it, or set EFFDL_CHROMIUM to a Chromium binary." >&2
    exit 1
fi
echo "make test: the browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu), or set" \
     "EFFDL_CHROMIUM to a Chromium/Chrome binary; 'make unit' runs the tests without a browser." >&2
exit 1
