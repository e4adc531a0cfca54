// The error catalog (common/errors.ts) is the one source of retryability and first responses:
// the profiles, the runbooks' error tables, the generated table in docs/runbooks/errors.md and
// every failure the code raises must agree with it. Pure unit tests over the source and docs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERROR_CATALOG, isErrorType, NON_RETRYABLE_ERROR_TYPES, type ErrorType } from '../common/errors';
import { ERRORS_DOC, renderedDoc } from '../infra/errorDocs';
import * as profiles from '../workflows/profiles';
import { PROJECT_ROOT } from './helpers/stack';

const RUNBOOKS = path.join(PROJECT_ROOT, 'docs', 'runbooks');
/** Failure names that come from below vault-dr (SDKs, Temporal), allowed in error tables. */
const FOREIGN = new Set(['TimeoutFailure', 'Error']);

/** GitHub's heading anchor. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The top-level arguments of a call starting at `open` (the index of its '('), as source text. */
function callArgs(src: string, open: number): string[] {
  const args: string[] = [];
  const stack: string[] = [];
  let start = open + 1;
  for (let i = open + 1; i < src.length; i++) {
    const c = src[i]!;
    const top = stack[stack.length - 1];
    if (top === "'" || top === '"') {
      if (c === '\\') i++;
      else if (c === top) stack.pop();
      continue;
    }
    if (top === '`') {
      if (c === '\\') i++;
      else if (c === '`') stack.pop();
      else if (c === '$' && src[i + 1] === '{') {
        stack.push('{');
        i++;
      }
      continue;
    }
    if (c === "'" || c === '"' || c === '`') stack.push(c);
    else if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.length === 0 && c === ')') {
        args.push(src.slice(start, i).trim());
        return args.filter(Boolean);
      }
      stack.pop();
    } else if (c === ',' && stack.length === 0) {
      args.push(src.slice(start, i).trim());
      start = i + 1;
    }
  }
  throw new Error('unbalanced call');
}

describe('error catalog', () => {
  const code = ['activities', 'workflows', 'workers', 'client', 'common', 'infra'].flatMap((d) => sourceFiles(path.join(PROJECT_ROOT, d)));

  it('every activity profile lists exactly the non-retryable types of the catalog', () => {
    const expected = [...NON_RETRYABLE_ERROR_TYPES].sort();
    assert.ok(expected.includes('ConfigInvalid') && expected.includes('InvalidInput'));
    for (const [name, p] of Object.entries(profiles)) {
      assert.deepEqual([...(p.retry?.nonRetryableErrorTypes ?? [])].sort(), expected, `profile ${name}`);
    }
  });

  it('every failure type the code raises is in the catalog, and explicit retry flags agree with it', () => {
    const problems: string[] = [];
    let calls = 0;
    for (const file of code) {
      const src = fs.readFileSync(file, 'utf8');
      const rel = path.relative(PROJECT_ROOT, file);
      // failure(type, message[, nonRetryable]), also imported as fail(...), and ctx-free helpers.
      for (const m of src.matchAll(/\b(?:fail|failure)\(/g)) {
        const args = callArgs(src, m.index! + m[0].length - 1);
        const type = /^(?:ErrorType\.(\w+)|'(\w+)')$/.exec(args[0] ?? '');
        if (!type || args.length < 2) continue; // ctx.fail(message, code) of the CLI, and the like
        calls++;
        const t = type[1] ?? type[2]!;
        if (!isErrorType(t)) problems.push(`${rel}: ${t} is not in the catalog`);
        else if (args[2] === 'true' || args[2] === 'false') {
          const nonRetryable = args[2] === 'true';
          if (nonRetryable === ERROR_CATALOG[t].retryable) problems.push(`${rel}: ${t} raised with nonRetryable=${args[2]}, the catalog says retryable=${String(ERROR_CATALOG[t].retryable)}`);
        }
      }
      for (const m of src.matchAll(/ApplicationFailure\.create\(\s*\{[^}]*?\btype:\s*'(\w+)'/g)) {
        calls++;
        if (!isErrorType(m[1]!)) problems.push(`${rel}: ApplicationFailure type ${m[1]} is not in the catalog`);
      }
      for (const m of src.matchAll(/ApplicationFailure\.(?:nonRetryable|retryable)\(/g)) {
        const args = callArgs(src, m.index! + m[0].length - 1);
        const t = /^'(\w+)'$/.exec(args[1] ?? '')?.[1];
        if (!t || !isErrorType(t)) problems.push(`${rel}: ApplicationFailure.${m[0]} without a catalog type (${args[1] ?? 'none'})`);
      }
    }
    assert.ok(calls > 30, `found only ${calls} raising sites: the scan is broken`);
    assert.deepEqual(problems, []);
  });

  it("every catalog type's runbook anchor exists and that section names the type", () => {
    for (const [type, e] of Object.entries(ERROR_CATALOG)) {
      const [file, anchor] = e.runbook.split('#');
      const doc = path.join(RUNBOOKS, file!);
      assert.ok(fs.existsSync(doc), `${type}: ${file} does not exist`);
      const lines = fs.readFileSync(doc, 'utf8').split('\n');
      const at = lines.findIndex((l) => /^#{1,6} /.test(l) && slug(l.replace(/^#+ /, '')) === anchor);
      assert.ok(at >= 0, `${type}: no heading #${anchor} in ${file}`);
      const level = /^#+/.exec(lines[at]!)![0].length;
      const end = lines.findIndex((l, i) => i > at && new RegExp(`^#{1,${level}} `).test(l));
      const section = lines.slice(at, end < 0 ? undefined : end).join('\n');
      assert.ok(section.includes(type), `${type}: section #${anchor} of ${file} does not mention it`);
    }
  });

  it("the runbooks' error tables agree with the catalog on what is retried, and use no unknown type", () => {
    const problems: string[] = [];
    let rows = 0;
    for (const file of fs.readdirSync(RUNBOOKS).filter((f) => f.endsWith('.md') && f !== 'errors.md')) {
      const lines = fs.readFileSync(path.join(RUNBOOKS, file), 'utf8').split('\n');
      let retriedCol = -1;
      for (const [i, line] of lines.entries()) {
        if (!line.startsWith('|')) {
          retriedCol = -1;
          continue;
        }
        const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
        if (cells[0] === 'error type') {
          retriedCol = cells.indexOf('retried');
          continue;
        }
        if (retriedCol < 0 || /^-+$/.test(cells[0] ?? '')) continue;
        const type = /^(?:plain )?`([A-Z]\w+)`/.exec(cells[0] ?? '')?.[1];
        if (!type) continue;
        rows++;
        if (FOREIGN.has(type)) continue;
        if (!isErrorType(type)) {
          problems.push(`${file}:${i + 1}: ${type} is not in the catalog`);
          continue;
        }
        const said = /^(yes|no)\b/.exec(cells[retriedCol] ?? '')?.[1];
        const truth = ERROR_CATALOG[type as ErrorType].retryable ? 'yes' : 'no';
        if (said !== truth) problems.push(`${file}:${i + 1}: ${type} retried "${cells[retriedCol]}", the catalog says ${truth}`);
      }
    }
    assert.ok(rows > 30, `found only ${rows} error rows: the table scan is broken`);
    assert.deepEqual(problems, []);
  });

  it('the table in docs/runbooks/errors.md is what the catalog renders (npm run docs:errors)', () => {
    const committed = fs.readFileSync(ERRORS_DOC, 'utf8');
    assert.equal(committed, renderedDoc(committed), 'docs/runbooks/errors.md is out of date: run npm run docs:errors');
  });
});
