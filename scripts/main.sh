#!/usr/bin/env bash
# The quick start's main job on the embedded local stack: install what is missing, bring the
# real servers up, start the vault-dr worker, check health, and take a real encrypted backup of
# the local OpenBao into S3 through Temporal, verified after upload.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node.js 22+ first on PATH for everything below (installed into ~/.cache/vault-dr when missing).
. scripts/node.sh
bash scripts/ensure-deps.sh --monitoring
node bin/stack.js up
node bin/stack.js worker-start
echo
echo "== vaultHealthCheck (through Temporal, on the worker) =="
node bin/vaultdr.js health --workflow
echo
echo "== daily backup schedule (02:00 UTC) =="
node bin/vaultdr.js schedules apply
echo
echo "== vaultHealthMonitor: checks every minute, one alert and one all-clear per incident =="
node bin/vaultdr.js monitor start
echo
echo "== alertDeliveryTest: a test alert of every severity on e-mail, Slack and PagerDuty (local stand-ins), confirmed =="
node bin/vaultdr.js alerts test --confirm inbox --timeout 60
echo
echo "== backupVault: snapshot → AES-256-GCM → S3, verified =="
node bin/vaultdr.js backup run
echo
echo "Backups:         npx vaultdr backup list"
echo "Full check:      npx vaultdr backup verify latest   (decrypts with the dev validation key; or --shares FILE FILE FILE from .stack/keys/)"
echo "Temporal Web UI: http://localhost:8233  (payloads decode via the codec endpoint on 127.0.0.1:8089)"
echo "Mailpit (alerts): http://127.0.0.1:8025"
echo "Prometheus:      http://127.0.0.1:9090/alerts   Alertmanager: http://127.0.0.1:9093"
echo "Slack/PagerDuty stand-in (what was sent): http://127.0.0.1:8099/api/received"
echo "Monitor:         npx vaultdr monitor status"
echo "Stop everything: npm run stack:down"
