// Restore domain shared by the restoreVault workflow, its activities and the CLI. Workflow-safe.
import { z } from 'zod';

export const RestoreInput = z
  .object({
    /** A backup id, or "latest" for the newest verified backup. */
    backupId: z.union([z.literal('latest'), z.string().regex(/^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/, 'expected a backup id like 20261128T020000Z-1a2b3c4d or "latest"')]).default('latest'),
    /**
     * staging: a throwaway OpenBao on loopback, torn down afterwards.
     * production: the configured cluster, only after an approveRestore update from a responder.
     */
    target: z.enum(['staging', 'production']).default('staging'),
    /**
     * How the backup is decrypted: the restore host's validation key, or the escrow key rebuilt from
     * custodian shares submitted to the worker (`vaultdr keys submit-share`), never through Temporal.
     */
    keySource: z.enum(['validation-key', 'custodian-shares']).default('validation-key'),
    /** Production only: how long to wait for approval, and how often to remind meanwhile. */
    approvalTimeoutMinutes: z.number().int().min(1).max(7 * 24 * 60).default(24 * 60),
    remindEveryMinutes: z.number().int().min(1).max(24 * 60).default(60),
    /** Why: shown in the restore history ("weekly validation", "drill", ...). */
    reason: z.string().max(200).default('manual'),
  })
  .strict();
export type RestoreInput = z.input<typeof RestoreInput>;

export interface KvCheck {
  mount: string;
  paths: number;
  versions: number;
  expected: { paths: [number, number]; versions: [number, number] };
  matches: boolean;
}

export interface SecretCheck {
  kv?: KvCheck;
  canary: { path: string; expected: string; found: string; matches: boolean };
  readable: string[];
  unreadable: { path: string; error: string }[];
}

export interface RestoreRecord {
  restoreId: string;
  workflowId: string;
  reason: string;
  target: 'staging' | 'production';
  approval?: Approval;
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

export type KeySource = 'validation-key' | 'custodian-shares';

export const RESTORE_HISTORY_PREFIX = 'restores/history/';

/** A responder's decision on a production restore (the approveRestore update). */
export const Approval = z
  .object({
    approve: z.boolean(),
    who: z.string().trim().min(1, 'say who decides').max(200),
    why: z.string().trim().min(1, 'say why').max(1000),
    /** Required to replace a cluster with a snapshot older than its current data. */
    allowOlderSnapshot: z.boolean().default(false),
  })
  .strict();
export type Approval = z.output<typeof Approval>;
