#!/bin/sh
# Install Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium;
# Playwright's own browser download is not used).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium
