#!/usr/bin/env node
// The `vaultdr` command; the code is TypeScript compiled to lib/.
// Node 20 is supported by the SDK versions in package-lock.json; its notice about future SDKs needing
// Node 22 would print on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'lib', 'client', 'cli.js');
if (!fs.existsSync(entry)) {
  console.error('vaultdr: not built yet; run `npm install` (it builds) or `npm run build`');
  process.exit(1);
}
require(entry)
  .runCli(process.argv.slice(2))
  .then((code) => process.exit(code));
