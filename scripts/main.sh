#!/usr/bin/env bash
# The quick start's main job on the embedded local stack: install what is missing, bring the
# real servers up, start the vault-dr worker, and run the main workflow through Temporal.
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
bash scripts/ensure-deps.sh
node bin/stack.js up
node bin/stack.js worker-start
echo
echo "== vaultHealthCheck (through Temporal, on the worker) =="
node bin/vaultdr.js health --workflow
echo
echo "Temporal Web UI: http://localhost:8233  (workflow inputs/results decode via the codec endpoint on 127.0.0.1:8089)"
echo "Mailpit:         http://127.0.0.1:8025"
echo "CLI:             npx vaultdr --help        Stop everything: npm run stack:down"
