// Unseal-key generations: which set of custodian shares opens which backup. Generation 1 is the set
// `sys/init` made; each completed rotateUnsealKeys ceremony adds one. Kept per cluster in the backup
// bucket at unseal-keys/<clusterId>/generations.json; each backup manifest names the generation
// current when its snapshot was taken, and a superseded generation's shares stay escrowed while any
// backup manifest still names it. Workflow-safe: types and names only, never a share.
import { z } from 'zod';

export const UNSEAL_KEYS_PREFIX = 'unseal-keys/';
export const generationsKey = (clusterId: string) => `${UNSEAL_KEYS_PREFIX}${clusterId || 'unknown-cluster'}/generations.json`;

export interface UnsealKeyGeneration {
  generation: number;
  /** The rotation's nonce (the key of idempotency); "init" for generation 1. */
  nonce: string;
  shares: number;
  threshold: number;
  /** Custodian name → PGP fingerprint, in share order. */
  custodians: { name: string; fingerprint: string }[];
  /** Where each custodian's PGP-encrypted share was put for distribution (object keys). */
  distribution: string[];
  createdAt: string;
  workflowId: string;
  /** Set when a later generation replaced it: its shares must stay escrowed while backups need them. */
  supersededAt?: string;
  /** How many backups in the bucket still name this generation, counted when it was superseded (and by `vaultdr keys generations`). */
  backupsStillNeedingIt?: number;
  /** The newest such backup: the escrow of these shares ends when retention deletes it. */
  newestBackupNeedingIt?: string;
}

export interface GenerationsFile {
  clusterId: string;
  current: number;
  generations: UnsealKeyGeneration[];
}

export const UnsealRotationInput = z
  .object({
    /** New share count (default: one per custodian in rotation.custodiansFile) and threshold. */
    shares: z.number().int().min(1).max(20).optional(),
    threshold: z.number().int().min(1).max(20).default(2),
    /** How long custodians have (each phase), and how often to remind. */
    timeoutMinutes: z.number().int().min(1).max(7 * 24 * 60).default(24 * 60),
    remindEveryMinutes: z.number().int().min(1).max(24 * 60).default(60),
    /** Take a fresh verified backup (child backupVault) right after the rotation. */
    backupAfter: z.boolean().default(true),
    training: z.boolean().default(false),
    incidentId: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .refine((d) => d.shares === undefined || d.threshold <= d.shares, { path: ['threshold'], message: 'threshold must not exceed shares' });
export type UnsealRotationInput = z.input<typeof UnsealRotationInput>;

export interface UnsealRotationResult {
  clusterId: string;
  generation: number;
  previousGeneration: number;
  shares: number;
  threshold: number;
  custodians: { name: string; fingerprint: string }[];
  /** Object keys of the PGP-encrypted shares, one per custodian. */
  distribution: string[];
  /** The new shares unsealed a throwaway copy of the cluster. */
  provenOnCopy: boolean;
  /** The fresh verified backup taken right after (its id), when backupAfter. */
  backupId?: string;
  phasesMs: Record<string, number>;
  detail: string;
}
