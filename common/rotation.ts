// Emergency credential rotation: the input and result of the rotateCredential workflow (one run per
// credential class), shared by the workflow, its activities, the CLI and the breachResponse workflow
// that starts it as a child. Workflow-safe (no Node built-ins). Never a credential value: classes,
// scopes (role names, lease prefixes, key ids), KV paths and version numbers only.
import { z } from 'zod';

/**
 * The credential classes vault-dr rotates. Each names its scope:
 * - approle-secret-id: an AppRole role name; every other secret-id of the role is destroyed by accessor.
 * - token-lease: a lease prefix (auth/token/create/<role>, auth/approle/login, database/creds/<role>);
 *   everything under it is revoked (sys/leases/revoke-prefix, sync).
 * - smtp-relay, mailbox-password, ssh-key: a name under rotation.kvPrefix; the value lives in Vault
 *   KV, the host is reconfigured through a hook (mail host adapter, authorized_keys) or by a person.
 * - postgres-role: a PostgreSQL role name (ALTER ROLE ... PASSWORD over the superuser connection).
 * - channel-secret: "slack" or "pagerduty": issued by a third party, so a person rotates it and
 *   confirms through the confirmRotated update.
 * - backup-recipient: the key id of the compromised recipient (validation role): new backups stop
 *   being encrypted to it.
 */
export const CREDENTIAL_CLASSES = ['approle-secret-id', 'token-lease', 'smtp-relay', 'mailbox-password', 'ssh-key', 'postgres-role', 'channel-secret', 'backup-recipient'] as const;
export type CredentialClass = (typeof CREDENTIAL_CLASSES)[number];

const scopeText = z.string().trim().min(1).max(200).regex(/^[A-Za-z0-9_.:@/+-]+$/, 'expected a role name, lease prefix, key id or mailbox (letters, digits and _.:@/+-)');

export const RotateInput = z
  .object({
    /** Which credential class this run rotates (default: the worker config's rotation.defaultClass). */
    credentialClass: z.enum(CREDENTIAL_CLASSES).optional(),
    /** What within the class (see CREDENTIAL_CLASSES); default from the worker config per class. */
    scope: scopeText.optional(),
    /** Training run (breachResponse training mode): everything is marked TRAINING in alerts and results. */
    training: z.boolean().default(false),
    /** The incident this rotation belongs to (breachResponse's workflow id), for alerts and the audit trail. */
    incidentId: z.string().trim().min(1).max(200).optional(),
    /** channel-secret (and hooks not wired): how long to wait for the person who rotates it, and reminders. */
    confirmTimeoutMinutes: z.number().int().min(1).max(7 * 24 * 60).default(24 * 60),
    remindEveryMinutes: z.number().int().min(1).max(24 * 60).default(60),
  })
  .strict();
/** What a caller passes: `{ credentialClass, scope?, training?, incidentId? }` (breachResponse's contract). */
export type RotateInput = z.input<typeof RotateInput>;

/** The contract breachResponse records per class. */
export interface RotateResult {
  credentialClass: string;
  /** The new credential is in place and verified, and the old one is refused. */
  rotated: boolean;
  /** The new credential was shown to work. */
  newVerified: boolean;
  /** The old credential was shown to be refused. */
  oldRefused: boolean;
  /**
   * The old credential was deliberately left working: only when the new one never worked (so the
   * consumers are not cut off). False once revocation ran, even when the refusal check failed.
   */
  oldLeftInPlace: boolean;
  /** What happened, in the operator's words (never a value). */
  detail: string;
}

/** A person's confirmation that they rotated a third-party secret (or applied a hook not wired here). */
export const RotationConfirmation = z
  .object({
    who: z.string().trim().min(1, 'say who rotated it').max(200),
    /** The new value is in Vault KV (the path the workflow names in waitingFor). */
    newValueStored: z.literal(true, { errorMap: () => ({ message: 'store the new value in Vault KV first (path in progress.waitingFor), then confirm with newValueStored: true' }) }),
    /** The old one was revoked at the issuer (Slack app, PagerDuty service, mail host...). */
    oldRevoked: z.boolean(),
    note: z.string().trim().max(1000).optional(),
  })
  .strict();
export type RotationConfirmation = z.output<typeof RotationConfirmation>;

/**
 * smtp-relay with rotation.host: a responder says where in Vault they stored the relay login the
 * provider issued (`username`, `password`, optionally `host`, `port`). A path and a version, never
 * the value: an extra field (a pasted password) is rejected by the validator and never recorded.
 */
export const RelayPasswordStored = z
  .object({
    who: z.string().trim().min(1, 'say who stored it').max(200),
    /** The KV v2 API path (mount/data/...) holding it, under the rotation folder (progress.waitingFor names one). */
    kvPath: z
      .string()
      .trim()
      .min(1)
      .max(300)
      .regex(/^[\w.-]+\/data\/[\w.@+-]+(\/[\w.@+-]+)*$/, 'expected a KV v2 path like secret/data/vault-dr/credentials/smtp-relay/<account>')
      .refine((p) => !p.split('/').includes('..'), 'no ".." in the path'),
    /** The KV version holding it (default: the latest). */
    version: z.number().int().min(1).max(1_000_000).optional(),
    /** The old login was revoked at the relay provider (vault-dr checks it either way). */
    oldRevoked: z.boolean(),
    note: z.string().trim().max(1000).optional(),
  })
  .strict();
export type RelayPasswordStored = z.output<typeof RelayPasswordStored>;

/** The idempotency key of one class's rotation: the workflow id and the class (a retry or a resumed run reuses it). */
export function rotationIdOf(workflowId: string, credentialClass: string, scope: string): string {
  return `${workflowId}/${credentialClass}/${scope}`.slice(0, 400);
}

/**
 * sealUnsealDrill input: a throwaway OpenBao with this many custodian shares (target "throwaway",
 * the default), or the HA cluster this worker controls (target "ha", config ha.*: its own shares
 * and threshold apply); how long custodians have.
 */
export const SealDrillInput = z
  .object({
    target: z.enum(['throwaway', 'ha']).default('throwaway'),
    shares: z.number().int().min(1).max(10).default(3),
    threshold: z.number().int().min(1).max(10).default(2),
    /** How long to wait for the custodians' shares, and how often to remind. */
    unsealTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(60),
    remindEveryMinutes: z.number().int().min(1).max(24 * 60).default(15),
    training: z.boolean().default(false),
    incidentId: z.string().trim().min(1).max(200).optional(),
    /** Target ha: how long bringing the nodes back (started, unsealed, the cluster fully healthy) may take. */
    healTimeoutSeconds: z.number().int().min(5).max(3600).default(180),
  })
  .strict()
  .refine((d) => d.threshold <= d.shares, { path: ['threshold'], message: 'threshold must not exceed shares' });
export type SealDrillInput = z.input<typeof SealDrillInput>;

export interface SealDrillResult {
  drillId: string;
  /** Absent in results of runs from before the HA target existed (always a throwaway server then). */
  target?: 'throwaway' | 'ha';
  /** The sealed server: the throwaway server, or the HA cluster's active node. */
  address: string;
  /** target ha: the node sealed and the standbys stopped and brought back. */
  ha?: { sealedNode: string; standbys: string[]; leaderAfter?: string };
  sealed: boolean;
  refusedWhileSealed: boolean;
  servesAgain: boolean;
  sharesUsed: number;
  threshold: number;
  /**
   * Each phase's duration in ms (workflow clock): seal, proveRefuses, unseal (seal done → unsealed),
   * serveAgain, total; target ha also stopStandbys, quorum (the first standby back: a lone raft node
   * cannot become active) and restoreStandbys (the rest back, the cluster fully healthy).
   */
  phasesMs: Record<'seal' | 'proveRefuses' | 'unseal' | 'serveAgain' | 'total', number> & Partial<Record<'stopStandbys' | 'quorum' | 'restoreStandbys', number>>;
  detail: string;
}

/** The custodianSharesReady signal from the share intake (counts only). */
export const UnsealReady = z.object({ received: z.number().int().min(1).max(255), threshold: z.number().int().min(0).max(255), keyId: z.string().min(1).max(300) }).strict();
