#!/usr/bin/env node
// Entry point for `npm run hosts:*` (the local VPS hosts); the code is TypeScript compiled to lib/.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'lib', 'stack', 'hostsCli.js');
if (!fs.existsSync(entry)) {
  console.error('hosts: not built yet; run `npm install` (it builds) or `npm run build`');
  process.exit(1);
}
require(entry);
