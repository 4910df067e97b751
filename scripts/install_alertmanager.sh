#!/bin/sh
# Install Debian's Alertmanager (prometheus-alertmanager) for the tests that push Heron's
# alerts to a real Alertmanager (tests/support/receivers.py).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus-alertmanager >/dev/null
# The package enables a system service; the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
fi
command -v prometheus-alertmanager
