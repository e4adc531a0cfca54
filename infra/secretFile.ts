// Reading files that hold secret material (key, share, keyring, credentials, token files) without
// ever putting their content into an error. `JSON.parse` quotes the start of its input in its
// message ("Unexpected token 'S', "{"k": SECRETMARK"... is not valid JSON"), and from an error the
// text travels into workflow history, alert e-mails, the CLI and the log. Errors built here name
// the file and what is wrong (a position, a missing field), never a byte of the content.
import * as fs from 'node:fs';

/** What is wrong with JSON text, from a `JSON.parse` error, without quoting the text. */
export function jsonProblem(err: unknown): string {
  const msg = err instanceof Error ? err.message : '';
  const pos = /at position (\d+)/.exec(msg);
  if (pos) return `not valid JSON at position ${pos[1]}`;
  if (/unexpected end/i.test(msg)) return 'not valid JSON: it ends early';
  return 'not valid JSON';
}

/** An `fs` error reduced to its code (ENOENT, EACCES, ...): never the file's content. */
export function readProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code ? `unreadable (${code})` : 'unreadable';
}

/**
 * Reads and parses a JSON file holding secrets. Throws `makeError(problem)` where problem is
 * "unreadable (ENOENT)", "not valid JSON at position 12" or similar; never content.
 */
export function readSecretJson(file: string, makeError: (problem: string) => Error): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw makeError(readProblem(err));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw makeError(jsonProblem(err));
  }
}

/** The value as a plain object, or undefined (so callers can say "expected an object"). */
export function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
