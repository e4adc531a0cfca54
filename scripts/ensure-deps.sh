#!/usr/bin/env bash
# Installs what vault-dr needs on this machine and builds it; each step is skipped when done.
# Node.js 22+ (scripts/node.sh), the
# Node packages (npm ci when node_modules is missing or older than package-lock.json), the
# TypeScript build, and Debian's docker-compose (used only to validate docker-compose.yml).
# The servers themselves (Temporal, OpenBao, SeaweedFS, Mailpit) are installed by `stack up`
# into ~/.cache/vault-dr.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node.js 22+ (installed into ~/.cache/vault-dr when the machine's node is older).
. scripts/node.sh

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --ignore-scripts
fi
echo "deps: build"
npx tsc -p tsconfig.json
# The workflow bundle the workflows role loads (skipped when current; workers/workflowBundle.ts).
node lib/workers/workflowBundle.js

# Tools from Debian, installed only when missing.
# --monitoring: Prometheus + promtool and Alertmanager + amtool, run by the local stack.
# --test-tools: those, plus docker-compose (validates docker-compose.yml without a Docker engine)
#   haproxy and openssl (the mTLS proxy and throwaway PKI of test/temporalTls.test.ts), and
#   chromium (the Web UI browser test).
# --bench-tools: age (the operator's shell pipeline `npm run bench` compares against) and openssl.
# --mail-hosts: the daemons of the local VPS hosts (stack/mailhosts.ts, `npm run hosts:up`): OpenSSH
#   server, Postfix (+ Cyrus SASL client modules for the relay login), Dovecot (IMAP, LMTP, auth), OpenDKIM,
#   Roundcube (sqlite) with PHP's CLI server, NSD (the zone the tests control), iproute2 (ip netns),
#   python3 (the render step /opt/mailu-local/apply on the hosts).
# --ha-tools: the HA harness (stack/ha/): PostgreSQL 15 server, etcd-server (Patroni's consensus
#   store), HAProxy, and python3-venv for Patroni, which stack/ha/postgres.ts installs from PyPI
#   (Debian's 3.0.2 can let a frozen old primary take the leader lock back; see PATRONI_PIN).
missing=()
for flag in "$@"; do
  case "$flag" in
    --test-tools|--monitoring)
      [ "$flag" = "--test-tools" ] && { command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose); }
      # HAProxy terminates TLS with client-certificate checks in front of the plaintext dev server (mTLS tests).
      [ "$flag" = "--test-tools" ] && { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy); command -v openssl >/dev/null 2>&1 || missing+=(openssl); }
      # Debian's Chromium for the Web UI browser test (playwright-core drives it; no browser download).
      [ "$flag" = "--test-tools" ] && { [ -x /usr/bin/chromium ] || missing+=(chromium); }
      command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
      command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
      ;;
    --mail-hosts)
      [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
      [ -x /usr/sbin/postfix ] || missing+=(postfix)
      [ -f /usr/lib/x86_64-linux-gnu/sasl2/libplain.so.2 ] || ls /usr/lib/*/sasl2/libplain.so* >/dev/null 2>&1 || missing+=(libsasl2-modules)
      [ -x /usr/sbin/dovecot ] || missing+=(dovecot-core)
      [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
      [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
      [ -x /usr/sbin/opendkim ] || missing+=(opendkim)
      command -v opendkim-testkey >/dev/null 2>&1 || missing+=(opendkim-tools)
      [ -f /usr/share/roundcube/index.php ] || missing+=(roundcube-core)
      [ -d /usr/share/roundcube/SQL ] && ls /usr/share/dbconfig-common/data/roundcube/install/sqlite3 >/dev/null 2>&1 || missing+=(roundcube-sqlite3)
      command -v php >/dev/null 2>&1 || missing+=(php-cli)
      php -m 2>/dev/null | grep -qx pdo_sqlite || missing+=(php-sqlite3)
      [ -x /usr/sbin/nsd ] || missing+=(nsd)
      command -v ip >/dev/null 2>&1 || missing+=(iproute2)
      command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
      [ -x /usr/bin/python3 ] || missing+=(python3)
      command -v openssl >/dev/null 2>&1 || missing+=(openssl)
      ;;
    --ha-tools)
      [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
      /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
      command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
      command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
      ;;
    --bench-tools)
      command -v age >/dev/null 2>&1 || missing+=(age)
      command -v openssl >/dev/null 2>&1 || missing+=(openssl)
      ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # The packages would start system services; the tests run their own on 127.0.0.1.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  $SUDO apt-get update -qq
  # Postfix asks what kind of mail system to set up; the hosts write their own main.cf.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
