#!/bin/sh
# Makes `promtool` (Prometheus' own checker) available for the exposition and
# rule tests of @unrdf/diagnostics. Idempotent: does nothing when it is on PATH.
# Debian/Ubuntu ship it in the `prometheus` package; needs root (CI runs as root).
set -eu
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-promtool: promtool is missing and apt-get is not available; install Prometheus' promtool" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-promtool: need root to apt-get install prometheus" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# The package's postinst would start a Prometheus server; policy-rc.d forbids that
# where there is an init system, and in containers there is none to start it.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null 2>&1
