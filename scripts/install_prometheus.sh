#!/bin/sh
# Install Debian's Prometheus (prometheus + promtool) for the tests that scrape Heron's
# /metrics with a real Prometheus and run `promtool check metrics` (tests/support/prometheus.py).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus >/dev/null
# The package enables a system service; the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v prometheus && command -v promtool
