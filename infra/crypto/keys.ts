// Backup key material. Each backup gets a fresh random 256-bit data key, wrapped for every
// recipient's X25519 public key (ephemeral-static ECDH → HKDF-SHA256 → AES-256-GCM, the same
// construction as age/HPKE, built only from Node's crypto primitives). The worker that makes
// backups holds only public keys; the escrow private key exists as Shamir shares with custodians
// (shamir-secret-sharing, independently audited), the validation private key on the host that
// runs restore validation.
import * as crypto from 'node:crypto';
import { asObject, readSecretJson } from '../secretFile';

export const WRAP_ALG = 'X25519-HKDF-SHA256-A256GCM';
const WRAP_INFO = Buffer.from('vault-dr backup data key wrap v1');

export type RecipientRole = 'escrow' | 'validation';

export interface Recipient {
  keyId: string;
  role: RecipientRole;
  /** Raw 32-byte X25519 public key, base64. */
  publicKey: string;
}

export interface WrappedKey {
  keyId: string;
  alg: typeof WRAP_ALG;
  ephemeralPublicKey: string;
  nonce: string;
  wrappedKey: string;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

const b64url = (b: Buffer) => b.toString('base64url');

export function publicKeyObject(raw: Buffer): crypto.KeyObject {
  if (raw.length !== 32) throw new KeyError('an X25519 public key is 32 bytes');
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(raw) }, format: 'jwk' });
}

export function privateKeyObject(raw: Buffer): crypto.KeyObject {
  if (raw.length !== 32) throw new KeyError('an X25519 private key is 32 bytes');
  return crypto.createPrivateKey({ key: pkcs8FromRaw(raw), format: 'der', type: 'pkcs8' });
}

// PKCS#8 prefix for an X25519 private key (RFC 8410): SEQUENCE { 0, AlgId 1.3.101.110, OCTET STRING { OCTET STRING(32) } }.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
function pkcs8FromRaw(raw: Buffer): Buffer {
  return Buffer.concat([PKCS8_X25519_PREFIX, raw]);
}

export function rawPublicKey(key: crypto.KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
}

export function rawPrivateKey(key: crypto.KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

/** Key id: a fingerprint of the public key, safe to show and to record in manifests. */
export function keyIdOf(rawPub: Buffer): string {
  return `x25519:${crypto.createHash('sha256').update(rawPub).digest('hex').slice(0, 24)}`;
}

export interface KeyPair {
  keyId: string;
  publicKey: Buffer;
  privateKey: Buffer;
}

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
  const pub = rawPublicKey(publicKey);
  return { keyId: keyIdOf(pub), publicKey: pub, privateKey: rawPrivateKey(privateKey) };
}

/** The public half of a raw private key, to check reconstructed shares against a fingerprint. */
export function keyIdOfPrivate(rawPriv: Buffer): string {
  return keyIdOf(rawPublicKey(crypto.createPublicKey(privateKeyObject(rawPriv))));
}

function kek(shared: Buffer, ephPub: Buffer, recipientPub: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', shared, Buffer.concat([ephPub, recipientPub]), WRAP_INFO, 32));
}

export function wrapDataKey(dataKey: Buffer, recipient: Recipient): WrappedKey {
  const recipientPub = Buffer.from(recipient.publicKey, 'base64');
  if (keyIdOf(recipientPub) !== recipient.keyId) throw new KeyError(`recipient ${recipient.keyId}: key id does not match its public key`);
  const eph = crypto.generateKeyPairSync('x25519');
  const ephPub = rawPublicKey(eph.publicKey);
  const shared = crypto.diffieHellman({ privateKey: eph.privateKey, publicKey: publicKeyObject(recipientPub) });
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', kek(shared, ephPub, recipientPub), nonce);
  cipher.setAAD(Buffer.from(recipient.keyId));
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  return { keyId: recipient.keyId, alg: WRAP_ALG, ephemeralPublicKey: ephPub.toString('base64'), nonce: nonce.toString('base64'), wrappedKey: wrapped.toString('base64') };
}

/** Unwraps with a private key; throws KeyError when this key is not a recipient or the stanza was altered. */
export function unwrapDataKey(stanzas: WrappedKey[], privateKey: Buffer): Buffer {
  const priv = privateKeyObject(privateKey);
  const myPub = rawPublicKey(crypto.createPublicKey(priv));
  const keyId = keyIdOf(myPub);
  const stanza = stanzas.find((s) => s.keyId === keyId);
  if (!stanza) throw new KeyError(`wrong key: this backup is encrypted for ${stanzas.map((s) => s.keyId).join(', ')}, not for ${keyId}`);
  if (stanza.alg !== WRAP_ALG) throw new KeyError(`unsupported key wrap algorithm ${stanza.alg}`);
  const ephPub = Buffer.from(stanza.ephemeralPublicKey, 'base64');
  const shared = crypto.diffieHellman({ privateKey: priv, publicKey: publicKeyObject(ephPub) });
  const wrapped = Buffer.from(stanza.wrappedKey, 'base64');
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', kek(shared, ephPub, myPub), Buffer.from(stanza.nonce, 'base64'));
    d.setAAD(Buffer.from(keyId));
    d.setAuthTag(wrapped.subarray(wrapped.length - 16));
    return Buffer.concat([d.update(wrapped.subarray(0, wrapped.length - 16)), d.final()]);
  } catch {
    throw new KeyError(`key stanza for ${keyId} does not authenticate (altered or corrupt header)`);
  }
}

/** Recipients file: {"recipients": [{"keyId", "role", "publicKey"}]} — public keys only. */
export function loadRecipients(file: string): Recipient[] {
  const json = asObject(readSecretJson(file, (problem) => new KeyError(`recipients file ${file} is ${problem}`)));
  const list = json?.recipients;
  if (json === undefined || (list !== undefined && !Array.isArray(list))) throw new KeyError(`recipients file ${file}: expected {"recipients": [{"keyId", "role", "publicKey"}]}`);
  const recipients = (list ?? []) as Recipient[];
  if (recipients.length === 0) throw new KeyError(`recipients file ${file} lists no recipients`);
  recipients.forEach((r, i) => {
    if (typeof r?.keyId !== 'string' || typeof r.publicKey !== 'string') throw new KeyError(`recipients file ${file}: recipient #${i + 1} needs a "keyId" and a "publicKey" string`);
    // Key ids are fingerprints of public keys, safe to name; the file's other content is not echoed.
    if (keyIdOf(Buffer.from(r.publicKey, 'base64')) !== r.keyId) throw new KeyError(`recipients file ${file}: recipient #${i + 1}: key id does not match its public key`);
  });
  if (!recipients.some((r) => r.role === 'escrow')) throw new KeyError(`recipients file ${file} has no escrow recipient: backups would not be recoverable without the validation host`);
  return recipients;
}

/** A private key file (validation key): {"keyId", "privateKey": base64}. Errors never quote the file. */
export function loadPrivateKeyFile(file: string): Buffer {
  const json = asObject(readSecretJson(file, (problem) => new KeyError(`private key file ${file} is ${problem}`)));
  if (!json) throw new KeyError(`private key file ${file}: expected {"keyId", "privateKey"}`);
  if (typeof json.privateKey !== 'string') throw new KeyError(`private key file ${file}: "privateKey" is missing or not a string`);
  const raw = Buffer.from(json.privateKey, 'base64');
  if (raw.length !== 32) throw new KeyError(`private key file ${file}: "privateKey" is not a 32-byte X25519 key in base64`);
  if (json.keyId !== undefined && keyIdOfPrivate(raw) !== json.keyId) {
    raw.fill(0);
    throw new KeyError(`private key file ${file}: "privateKey" does not match "keyId"`);
  }
  return raw;
}
