#!/usr/bin/env bash
# Installs what vault-dr needs on this machine and builds it; each step is skipped when done.
# Node packages (npm ci when node_modules is missing or older than package-lock.json), the
# TypeScript build, and Debian's docker-compose (used only to validate docker-compose.yml).
# The servers themselves (Temporal, OpenBao, SeaweedFS, Mailpit) are installed by `stack up`
# into ~/.cache/vault-dr.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --ignore-scripts
fi
echo "deps: build"
npx tsc -p tsconfig.json

if [ "${1:-}" = "--test-tools" ] && ! command -v docker-compose >/dev/null 2>&1; then
  echo "deps: apt-get install docker-compose (validates docker-compose.yml; no Docker engine needed)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
