#!/usr/bin/env bash
# The whole test suite (README's test command, run by .ci/run): install what is missing, lint,
# bring the real local stack up, run every mocha test against it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node.js 22+ first on PATH for everything below (installed into ~/.cache/vault-dr when missing).
. scripts/node.sh
start=$(date +%s)
bash scripts/ensure-deps.sh --test-tools --bench-tools --mail-hosts
echo "test: lint"
npx eslint workflows activities workers client common infra stack test chaos bench
echo "test: stack up"
node bin/stack.js up
echo "test: mocha"
npx mocha "$@"
echo "test: finished in $(( $(date +%s) - start ))s"
