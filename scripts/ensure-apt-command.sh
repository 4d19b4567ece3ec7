#!/bin/sh
# Usage: ensure-apt-command.sh COMMAND DEBIAN-PACKAGE
# Makes COMMAND available by installing DEBIAN-PACKAGE with apt-get when it is not on
# PATH (e.g. `promtool prometheus` for the diagnostics tests, `etcd etcd-server` for the
# jtbd3-failover benchmark's side-by-side run). Idempotent: does nothing when COMMAND is
# on PATH. Needs root or passwordless sudo; exits non-zero when it cannot install.
# A package's postinst may try to start its service: policy-rc.d forbids that where there
# is an init system, and in containers and CI there is none to start it.
set -eu
if [ "$#" -ne 2 ]; then
  echo "usage: ensure-apt-command.sh COMMAND DEBIAN-PACKAGE" >&2
  exit 2
fi
command_name=$1
package=$2
if command -v "$command_name" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-apt-command: $command_name is missing and apt-get is not available; install the $package package" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-apt-command: need root to apt-get install $package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null
command -v "$command_name" >/dev/null 2>&1
