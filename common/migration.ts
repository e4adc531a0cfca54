// VPS migration domain shared by migrateVps, recoverSmtpCredentials, their activities and the CLI.
// Workflow-safe (zod only). Inputs name hosts, fingerprints and Vault paths; never a secret value.
import { z } from 'zod';

const fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'expected an SSH host key fingerprint like SHA256:<43 base64 characters> (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)');

/** One VPS reached over SSH; any field left out comes from the worker's config (migration.hosts). */
export const HostRef = z
  .object({
    address: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'expected a host name or IP address').optional(),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a Unix user name').optional(),
    hostKeySha256: fingerprint.optional(),
  })
  .strict();
export type HostRef = z.infer<typeof HostRef>;

/** Where the migration's secrets are read: the live Vault, or a backup restored into a throwaway OpenBao. */
export type SecretSource = { kind: 'live' } | { kind: 'backup'; backupId: string; stagingId: string; address: string };

export const MigrateInput = z
  .object({
    /** The new VPS (defaults: migration.hosts.new). */
    newHost: HostRef.default({}),
    /** The old VPS; checked when reachable (it may be dead). `false`: do not look at it. */
    oldHost: z.union([HostRef, z.literal(false)]).default({}),
    /**
     * Where the secrets come from: `auto` reads the live Vault and falls back to the latest verified
     * backup when Vault is unavailable; `backup` always uses the backup (the SMTP recovery drill).
     */
    secretSource: z.enum(['auto', 'live', 'backup']).default('auto'),
    /** The backup to recover from when the secrets come from a backup. */
    backupId: z.union([z.literal('latest'), z.string().regex(/^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/, 'expected a backup id like 20261128T020000Z-1a2b3c4d or "latest"')]).default('latest'),
    /**
     * Copy the mailboxes (Maildir) from the old VPS when it is reachable, before the cutover and again
     * (only what is new) right after it. false: the mail stays where it is (restored from a backup instead).
     */
    copyMail: z.boolean().default(true),
    /** Wait for an approveCutover update before the switch (false: the drill records the switch itself). */
    awaitCutover: z.boolean().default(true),
    cutoverTimeoutMinutes: z.number().int().min(1).max(7 * 24 * 60).default(24 * 60),
    remindEveryMinutes: z.number().int().min(1).max(24 * 60).default(60),
    reason: z.string().max(200).default('manual'),
    requestedBy: z.string().trim().min(1).max(200).optional(),
  })
  .strict();
export type MigrateInput = z.input<typeof MigrateInput>;
export type MigrateParsed = z.output<typeof MigrateInput>;

export const RecoverSmtpInput = z
  .object({
    newHost: HostRef.default({}),
    secretSource: z.enum(['auto', 'live', 'backup']).default('auto'),
    backupId: MigrateInput.shape.backupId,
    /** Set by migrateVps when it already opened the source (a restored staging OpenBao it tears down itself). */
    openedSource: z
      .union([z.object({ kind: z.literal('live') }).strict(), z.object({ kind: z.literal('backup'), backupId: z.string(), stagingId: z.string(), address: z.string().regex(/^http:\/\/127\.0\.0\.1:\d{1,5}$/) }).strict()])
      .optional(),
    /** The mail configuration backup id (compensation) migrateVps uses; standalone runs make their own. */
    configBackupId: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/).optional(),
    reason: z.string().max(200).default('manual'),
  })
  .strict();
export type RecoverSmtpInput = z.input<typeof RecoverSmtpInput>;

/** The cutover decision (update approveCutover). */
export const CutoverApproval = z
  .object({
    who: z.string().trim().min(1, 'say who approves the cutover').max(200),
    why: z.string().trim().min(1, 'say why (ticket, change window)').max(500),
    approve: z.boolean().default(true),
  })
  .strict();
export type CutoverApproval = z.output<typeof CutoverApproval>;

/** One hop of the SMTP credential decryption path, checked without reading the values out. */
export interface Hop {
  hop: 'source reachable' | 'barrier unsealed' | 'policy grants read' | 'decrypts' | 'format';
  ok: boolean;
  detail: string;
}

/** A secret as results show it: where it is, which version, fingerprints of its values (never the values). */
export interface SecretRef {
  path: string;
  version: number;
  /** SHA256 fingerprints: SSH key fingerprints, or `sha256:<first 12 hex>` of a value. */
  fingerprints: string[];
}

export interface PreflightReport {
  host: string;
  hostKeySha256: string;
  os: string;
  diskFreeMiB: number;
  portsInUse: number[];
  installed: Record<string, string>;
}

export interface Compensation {
  step: string;
  what: string;
  undone: boolean;
  detail: string;
}

export interface MailCheck {
  selector: string;
  domain: string;
  dkim: string;
  spf: string;
  dmarc: string;
  messageId: string;
}

export interface StepTiming {
  step: string;
  startedAt: string;
  seconds: number;
}

export interface MigrateResult {
  migrationId: string;
  status: 'migrated' | 'ready for cutover' | 'failed';
  newHost: PreflightReport;
  oldHost?: PreflightReport | { unreachable: string } | { skipped: true };
  secretSource: SecretSource['kind'];
  backupId?: string;
  secrets: SecretRef[];
  sshKeys: { deployed: string[]; refused: string[]; previousKept: string };
  smtp: SmtpRecoveryResult;
  dkim: { selector: string; domain: string; publicKeySha256: string; dnsMatches: boolean };
  mail: MailCheck;
  cutover?: { who: string; why: string; at: string; recheck: MailCheck };
  /** copyMailboxes runs: before the cutover, then the final sync after it (absent: old host unreachable or copyMail false). */
  mailCopy?: MailCopy[];
  timings: StepTiming[];
}

/** One copy of the mailboxes old → new, and its verification (counts and a SHA-256 per message). */
export interface MailCopy {
  label: string;
  mailDir: string;
  /** Mailboxes (Maildir folders) and messages on the old host when the copy started. */
  mailboxes: number;
  messages: number;
  /** Every one of those messages is on the new host, byte for byte (by SHA-256; flags in file names may differ). */
  verified: true;
  /** Messages on the new host after the copy (it may have had its own, e.g. the test mail). */
  messagesOnNew: number;
  /** Bytes of the tar stream the worker relayed. */
  bytes: number;
  seconds: number;
}

export interface SmtpRecoveryResult {
  source: SecretSource['kind'];
  backupId?: string;
  hops: Hop[];
  relay: { path: string; version: number; host: string };
  mailboxes: { path: string; version: number; user: string }[];
  applied: string;
  webmail: { url: string; status: number; inboxSeen: boolean };
  imap: { login: boolean; mailbox: string };
}
