// Restore domain shared by the restoreVault workflow, its activities and the CLI. Workflow-safe.
import { z } from 'zod';

export const RestoreInput = z
  .object({
    /** A backup id, or "latest" for the newest verified backup. */
    backupId: z.union([z.literal('latest'), z.string().regex(/^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/, 'expected a backup id like 20261128T020000Z-1a2b3c4d or "latest"')]).default('latest'),
    /** staging: a throwaway OpenBao on loopback, torn down afterwards. */
    target: z.enum(['staging']).default('staging'),
    /** Why: shown in the restore history ("weekly validation", "drill", ...). */
    reason: z.string().max(200).default('manual'),
  })
  .strict();
export type RestoreInput = z.input<typeof RestoreInput>;

export interface SecretCheck {
  canary: { path: string; expected: string; found: string; matches: boolean };
  readable: string[];
  unreadable: { path: string; error: string }[];
}

export interface RestoreRecord {
  restoreId: string;
  workflowId: string;
  reason: string;
  target: 'staging';
  backupId: string;
  status: 'verified' | 'failed';
  failedStep?: string;
  error?: string;
  snapshotCreatedAt: string;
  startedAt: string;
  finishedAt: string;
  /** Recovery point objective: snapshot time → restore start, seconds. */
  rpoSeconds: number;
  /** Recovery time objective: restore start → secrets verified accessible, seconds (verified runs only). */
  rtoSeconds?: number;
  raftIndex: number;
  checks?: SecretCheck;
}

export const RESTORE_HISTORY_PREFIX = 'restores/history/';
