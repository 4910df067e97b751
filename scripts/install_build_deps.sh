#!/bin/sh
# System packages the dev install needs: mysqlclient (a dev/test dependency) builds from
# source against libmariadb. Installs them with apt only when missing (sudo when not root).
set -eu
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libmariadb 2>/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libmariadb-dev pkg-config >/dev/null
