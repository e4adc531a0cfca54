// Renders the error catalog (common/errors.ts) as the table in docs/runbooks/errors.md, between
// its generated-table markers. `npm run docs:errors` rewrites the file; test/errorCatalog.test.ts
// fails when the committed table differs from what the catalog renders.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERROR_CATALOG, type ErrorType } from '../common/errors';

export const ERRORS_DOC = path.join(__dirname, '..', '..', 'docs', 'runbooks', 'errors.md');
export const BEGIN = '<!-- error-catalog:begin (generated from common/errors.ts by `npm run docs:errors`; do not edit) -->';
export const END = '<!-- error-catalog:end -->';

export function renderErrorTable(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = (Object.keys(ERROR_CATALOG) as ErrorType[]).map((type) => {
    const e = ERROR_CATALOG[type];
    const [file, anchor] = e.runbook.split('#');
    const link = file === 'errors.md' ? `[below](#${anchor})` : `[${file.replace(/\.md$/, '')}: ${anchor}](${e.runbook})`;
    return `| \`${type}\` | ${e.retryable ? 'yes' : 'no'} | ${cell(e.firstResponse)} | ${link} |`;
  });
  return ['| error type | retried | first response | runbook |', '|---|---|---|---|', ...rows].join('\n');
}

/** The file with its generated section replaced by the current rendering. */
export function renderedDoc(current: string): string {
  const a = current.indexOf(BEGIN);
  const b = current.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${ERRORS_DOC}: generated-table markers missing`);
  return `${current.slice(0, a + BEGIN.length)}\n${renderErrorTable()}\n${current.slice(b)}`;
}

if (require.main === module) {
  const before = fs.readFileSync(ERRORS_DOC, 'utf8');
  const after = renderedDoc(before);
  if (after !== before) fs.writeFileSync(ERRORS_DOC, after);
  process.stdout.write(`${path.relative(process.cwd(), ERRORS_DOC)}: ${after === before ? 'up to date' : 'table rewritten'}\n`);
}
