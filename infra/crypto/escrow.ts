// Escrow of the backup private key: `vaultdr keys init` splits it into N Shamir shares with
// threshold K (shamir-secret-sharing, independently audited) for custodians, and
// `vaultdr keys verify-shares` proves K shares rebuild it (by fingerprint) without writing it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { combine, split } from 'shamir-secret-sharing';
import { generateKeyPair, keyIdOfPrivate, type Recipient } from './keys';
import { asObject, readSecretJson } from '../secretFile';

export interface ShareFile {
  format: 'vault-dr-share/1';
  /** Fingerprint of the escrow public key these shares rebuild. */
  keyId: string;
  index: number;
  shares: number;
  threshold: number;
  share: string;
  createdAt: string;
}

export interface KeyInitResult {
  recipientsFile: string;
  shareFiles: string[];
  validationKeyFile?: string;
  escrowKeyId: string;
  validationKeyId?: string;
}

function writeNew(file: string, content: string, mode: number): void {
  // 'wx': never overwrite existing key material.
  fs.writeFileSync(file, content, { mode, flag: 'wx' });
}

export async function initKeys(opts: { outDir: string; shares: number; threshold: number; validationKeyFile?: string }): Promise<KeyInitResult> {
  if (!Number.isInteger(opts.shares) || opts.shares < 2 || opts.shares > 255) throw new RangeError('shares must be 2..255');
  if (!Number.isInteger(opts.threshold) || opts.threshold < 2 || opts.threshold > opts.shares) throw new RangeError('threshold must be 2..shares');
  fs.mkdirSync(opts.outDir, { recursive: true, mode: 0o700 });
  const recipientsFile = path.join(opts.outDir, 'recipients.json');
  if (fs.existsSync(recipientsFile)) throw new Error(`${recipientsFile} exists: refusing to replace key material (move it away first)`);
  // Check every target up front so a refusal never leaves a half-written set of files.
  const targets = [...Array.from({ length: opts.shares }, (_, i) => path.join(opts.outDir, `share-${i + 1}-of-${opts.shares}.json`)), ...(opts.validationKeyFile ? [opts.validationKeyFile] : [])];
  const existing = targets.filter((f) => fs.existsSync(f));
  if (existing.length) throw new Error(`refusing to overwrite key material: ${existing.join(', ')}`);
  const escrow = generateKeyPair();
  const parts = await split(new Uint8Array(escrow.privateKey), opts.shares, opts.threshold);
  const createdAt = new Date().toISOString();
  const shareFiles = parts.map((share, i) => {
    const file = path.join(opts.outDir, `share-${i + 1}-of-${opts.shares}.json`);
    const body: ShareFile = { format: 'vault-dr-share/1', keyId: escrow.keyId, index: i + 1, shares: opts.shares, threshold: opts.threshold, share: Buffer.from(share).toString('base64'), createdAt };
    writeNew(file, JSON.stringify(body, null, 2) + '\n', 0o600);
    return file;
  });
  escrow.privateKey.fill(0);
  const recipients: Recipient[] = [{ keyId: escrow.keyId, role: 'escrow', publicKey: escrow.publicKey.toString('base64') }];
  let validationKeyId: string | undefined;
  if (opts.validationKeyFile) {
    const v = generateKeyPair();
    writeNew(opts.validationKeyFile, JSON.stringify({ keyId: v.keyId, privateKey: v.privateKey.toString('base64') }, null, 2) + '\n', 0o600);
    recipients.push({ keyId: v.keyId, role: 'validation', publicKey: v.publicKey.toString('base64') });
    validationKeyId = v.keyId;
    v.privateKey.fill(0);
  }
  writeNew(recipientsFile, JSON.stringify({ recipients }, null, 2) + '\n', 0o644);
  return { recipientsFile, shareFiles, validationKeyFile: opts.validationKeyFile, escrowKeyId: escrow.keyId, validationKeyId };
}

/**
 * The shape of a share file. Checking that `keyId` is a key id (a public fingerprint) makes it safe
 * to name in errors: a share pasted into the wrong field never reaches a message.
 */
export function isShareFile(v: unknown): v is ShareFile {
  const s = asObject(v);
  return (
    s !== undefined && s.format === 'vault-dr-share/1' && typeof s.share === 'string' && typeof s.keyId === 'string' && /^x25519:[0-9a-f]{24}$/.test(s.keyId) &&
    Number.isInteger(s.threshold) && (s.threshold as number) >= 2
  );
}

/** Reads a custodian share file; errors name the file and the problem, never its content. */
export function readShareFile(file: string): ShareFile {
  const json = readSecretJson(file, (problem) => new Error(`share file ${file} is ${problem}`));
  if (!isShareFile(json)) throw new Error(`${file} is not a vault-dr share file`);
  return json;
}

/** Rebuilds the escrow private key from share files; checks count and fingerprint. Caller must zero it. */
export async function reconstructFromShares(files: string[]): Promise<{ privateKey: Buffer; keyId: string; threshold: number }> {
  return reconstructFromSharesData(files.map(readShareFile));
}

/** The same from parsed share files (the worker's share intake receives them over HTTP). */
export async function reconstructFromSharesData(shares: ShareFile[]): Promise<{ privateKey: Buffer; keyId: string; threshold: number }> {
  if (shares.length === 0) throw new Error('no share files given');
  const keyIds = new Set(shares.map((s) => s.keyId));
  if (keyIds.size > 1) throw new Error(`shares belong to different keys: ${[...keyIds].join(', ')}`);
  const threshold = shares[0]!.threshold;
  const distinct = new Set(shares.map((s) => s.share));
  if (distinct.size < threshold) throw new Error(`need ${threshold} distinct shares of ${shares[0]!.keyId}, got ${distinct.size}`);
  const raw = Buffer.from(await combine([...distinct].map((s) => new Uint8Array(Buffer.from(s, 'base64')))));
  const keyId = raw.length === 32 ? keyIdOfPrivate(raw) : '';
  if (keyId !== shares[0]!.keyId) {
    raw.fill(0);
    throw new Error(`the shares do not rebuild key ${shares[0]!.keyId} (a share is corrupt or from another split)`);
  }
  return { privateKey: raw, keyId, threshold };
}
