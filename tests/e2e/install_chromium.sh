#!/bin/sh
# Installs Debian's chromium for the portal's browser tests when it is missing and we may.
# Idempotent; always exits 0: the browser tests skip with a message when chromium is absent.
if [ -x /usr/bin/chromium ]; then
  echo "chromium: present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium: missing and not root; the portal browser tests will skip (install Debian's chromium package)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: missing and no apt-get here; the portal browser tests will skip"
  exit 0
fi
echo "chromium: installing Debian's package..."
if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
  echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
else
  echo "chromium: install failed; the portal browser tests will skip"
fi
exit 0
