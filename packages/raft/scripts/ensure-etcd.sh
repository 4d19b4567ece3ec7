#!/bin/sh
# Makes `etcd` (Debian package `etcd-server`, etcd 3.4) available for the side-by-side
# write-path comparison in the jtbd3-failover benchmark. Idempotent: does nothing when
# etcd is on PATH. Needs root or passwordless sudo; exits non-zero (and the benchmark
# skips etcd with a note) when it cannot install it.
set -eu
if command -v etcd >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-etcd: etcd is missing and apt-get is not available; install etcd 3.4+" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-etcd: need root to apt-get install etcd-server" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# The package's postinst may try to start an etcd service; where there is no init
# system (containers, CI) there is nothing to start, and the benchmark runs its own.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
command -v etcd >/dev/null 2>&1
