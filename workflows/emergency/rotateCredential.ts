// rotateCredential — emergency rotation of ONE credential class (docs/runbooks/credential-rotation.md).
// Skeleton: the contract breachResponse starts as a child. The steps land in the next commits.
import { defineQuery, setHandler } from '@temporalio/workflow';
import { RotateInput, type RotateResult } from '../../common/rotation';
import { parseWorkflowInput } from '../../common/validate';

export interface RotateProgress {
  credentialClass?: string;
  scope?: string;
  step: string;
  completed: string[];
  waitingFor?: string;
  error?: string;
}
export const progress = defineQuery<RotateProgress>('progress');

export async function rotateCredential(rawInput?: RotateInput): Promise<RotateResult> {
  const state: RotateProgress = { step: 'validating input', completed: [] };
  setHandler(progress, () => state);
  const input = parseWorkflowInput('rotateCredential', RotateInput, rawInput);
  return { credentialClass: input.credentialClass ?? 'approle-secret-id', rotated: false, newVerified: false, oldRefused: false, oldLeftInPlace: true, detail: 'not implemented yet' };
}
