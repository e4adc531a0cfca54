// Shared input validation for workflows: a zod schema parse whose failure becomes a
// non-retryable ApplicationFailure naming the offending field. Workflow-safe (no Node built-ins).
// Nothing here ever echoes a received value in full: a 1 MiB value in an enum field once made a
// failure larger than Temporal's 2 MiB blob limit, so the workflow task retried forever and the
// worker log grew by a gigabyte a minute.
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { ErrorType } from './errors';

/** Largest workflow input accepted, as JSON; real inputs are a few hundred bytes. */
export const MAX_INPUT_BYTES = 64 * 1024;
/** Largest failure or validation message a workflow produces (the rest is cut, with the size said). */
export const MAX_MESSAGE_BYTES = 2048;
const RECEIVED_PREFIX_CHARS = 40;
const MAX_ISSUES = 5;

/** UTF-8 length of a string, without TextEncoder (kept out of the workflow sandbox's way). */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** `s` when it fits in `maxBytes`, else its start plus "… (N bytes)": never a huge value in a message. */
export function capText(s: string, maxBytes = MAX_MESSAGE_BYTES): string {
  const bytes = utf8Bytes(s);
  if (bytes <= maxBytes) return s;
  const suffix = `… (${bytes} bytes)`;
  // Characters ≤ bytes, so cutting by characters keeps the result within maxBytes for ASCII and close for the rest.
  let cut = Math.max(0, maxBytes - suffix.length);
  while (cut > 0 && utf8Bytes(s.slice(0, cut)) > maxBytes - suffix.length) cut = Math.floor(cut * 0.9);
  return s.slice(0, cut) + suffix;
}

/** A received value as an operator may see it: its first characters and, when cut, its size. */
export function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  const bytes = utf8Bytes(text);
  const quoted = (t: string) => (typeof value === 'string' ? `"${t}"` : t);
  return text.length <= RECEIVED_PREFIX_CHARS ? quoted(text) : `${quoted(text.slice(0, RECEIVED_PREFIX_CHARS))}… (${bytes} bytes)`;
}

function fieldOf(path: (string | number)[]): string {
  return path.length ? path.map((p) => preview(p).replace(/^"|"$/g, '')).join('.') : '(input)';
}

/**
 * One issue in the operator's words: field path, what was expected, and at most a short prefix of
 * what was received. zod's own messages quote the received value in full for enums and unknown
 * keys, so those are rebuilt here.
 */
function describeIssue(i: z.ZodIssue): string {
  switch (i.code) {
    case 'invalid_enum_value':
      return `expected one of ${i.options.map((o) => preview(o)).join(' | ')}, received ${preview(i.received)}`;
    case 'invalid_literal':
      return `expected ${preview(i.expected)}, received ${preview(i.received)}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${i.keys.slice(0, MAX_ISSUES).map((k) => preview(k)).join(', ')}${i.keys.length > MAX_ISSUES ? ` and ${i.keys.length - MAX_ISSUES} more` : ''}`;
    case 'invalid_union':
      // The first branch's issue usually says it best ("expected a backup id like ...").
      return i.unionErrors[0]?.issues.map(describeIssue).find((m) => m) ?? capText(i.message, 200);
    default:
      return capText(i.message, 200);
  }
}

/** Formats zod issues as `field "a.b": message` lines, the shape operators see in the UI. */
export function describeIssues(issues: z.ZodIssue[]): string {
  const shown = issues.slice(0, MAX_ISSUES).map((i) => `field "${fieldOf(i.path)}": ${describeIssue(i)}`);
  if (issues.length > MAX_ISSUES) shown.push(`and ${issues.length - MAX_ISSUES} more issue(s)`);
  return capText(shown.join('; '));
}

/**
 * Parses a workflow input. `undefined`/`null` become `{}` so every workflow can be started
 * from the Web UI with an empty input and get its defaults. An input larger than
 * MAX_INPUT_BYTES is refused before any field is looked at.
 */
export function parseWorkflowInput<S extends z.ZodTypeAny>(workflow: string, schema: S, raw: unknown): z.output<S> {
  const bytes = utf8Bytes(JSON.stringify(raw ?? {}) ?? '');
  if (bytes > MAX_INPUT_BYTES) {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      nonRetryable: true,
      message: `${workflow}: invalid input: ${bytes} bytes of JSON, the limit is ${MAX_INPUT_BYTES} bytes (inputs name things, they never carry data)`,
    });
  }
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      nonRetryable: true,
      message: `${workflow}: invalid input: ${describeIssues(result.error.issues)}`,
    });
  }
  return result.data;
}
