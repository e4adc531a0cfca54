// Renders the drill scenario catalogue (common/drills.ts) as docs/drills/scenarios.md.
// `npm run docs:drills` rewrites the file; test/drills.test.ts fails when it differs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderScenariosMarkdown } from '../common/drills';

export const SCENARIOS_DOC = path.join(__dirname, '..', '..', 'docs', 'drills', 'scenarios.md');

if (require.main === module) {
  fs.mkdirSync(path.dirname(SCENARIOS_DOC), { recursive: true });
  fs.writeFileSync(SCENARIOS_DOC, renderScenariosMarkdown());
  console.log(`wrote ${path.relative(process.cwd(), SCENARIOS_DOC)}`);
}
