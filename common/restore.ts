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
    /**
     * Who starts the restore (an operator claim, recorded). Required for production: the approver
     * must be someone else (two-person rule). How a deployment binds it to a real identity:
     * docs/runbooks/restore.md "Who may start and approve".
     */
    requestedBy: z.string().trim().min(1, 'say who starts the restore').max(200).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.target === 'production' && !v.requestedBy) {
      ctx.addIssue({ code: 'custom', path: ['requestedBy'], message: 'required for a production restore: the approver must be someone else (two-person rule)' });
    }
  });
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
  /** Who started it (production: required, and never the approver). */
  requestedBy?: string;
  approval?: Approval;
  /** Started by a Temporal Schedule (the weekly validation), not by a person. */
  scheduled?: boolean;
  backupId: string;
  /** cancelled: an operator cancelled the run (it says nothing about the backup). */
  status: 'verified' | 'failed' | 'cancelled';
  failedStep?: string;
  /** The failure's type (BackupNotFound, VerificationFailed, ...). */
  errorType?: string;
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

/** The `custodianSharesReady` signal from the worker's share intake (counts only, never a share). */
export const SharesReady = z
  .object({ received: z.number().int().min(1).max(255), threshold: z.number().int().min(1).max(255), keyId: z.string().min(1).max(200) })
  .strict()
  .refine((s) => s.received >= s.threshold, { message: 'received is below threshold: the shares are not ready' });

/** Names compared for the two-person rule: case and surrounding spaces do not make another person. */
export function samePerson(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * A person asked for a staging restore of a backup id that does not exist: a typo, answered by
 * the failure itself and a warning, not a failed restore validation that pages on-call. A
 * scheduled run, or "latest" finding nothing verified, is a real failure and still pages.
 */
export function isMistypedBackupId(r: Pick<RestoreRecord, 'target' | 'backupId' | 'errorType' | 'scheduled'>): boolean {
  return r.target === 'staging' && r.errorType === 'BackupNotFound' && r.backupId !== 'latest' && !r.scheduled;
}

/** Whether a restore record says anything about whether backups restore (metrics, monitor). */
export function countsAsValidation(r: RestoreRecord): boolean {
  // A run whose input was rejected never tried to restore anything.
  return r.target === 'staging' && r.status !== 'cancelled' && r.failedStep !== 'validating input' && !isMistypedBackupId(r);
}
