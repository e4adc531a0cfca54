#!/usr/bin/env node
// Entry point for `npm run ha:up|ha:down|ha:status`; the code is TypeScript compiled to lib/.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'lib', 'stack', 'ha', 'cli.js');
if (!fs.existsSync(entry)) {
  console.error('ha: not built yet; run `npm install` (it builds) or `npm run build`');
  process.exit(1);
}
require(entry);
