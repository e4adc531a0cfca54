// Shared input validation for workflows: a zod schema parse whose failure becomes a
// non-retryable ApplicationFailure naming the offending field. Workflow-safe (no Node built-ins).
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { ErrorType } from './errors';

/** Formats zod issues as `field "a.b": message` lines, the shape operators see in the UI. */
export function describeIssues(issues: z.ZodIssue[]): string {
  return issues
    .map((i) => `field "${i.path.length ? i.path.join('.') : '(input)'}": ${i.message}`)
    .join('; ');
}

/**
 * Parses a workflow input. `undefined`/`null` become `{}` so every workflow can be started
 * from the Web UI with an empty input and get its defaults.
 */
export function parseWorkflowInput<S extends z.ZodTypeAny>(workflow: string, schema: S, raw: unknown): z.output<S> {
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
