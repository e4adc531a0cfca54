// OpenBao unseal-key rotation helpers (openpgp): custodians' PGP public keys in the form
// sys/rotate/root/init takes (base64 of the binary key, in share order), the fingerprints OpenBao
// reports back, armouring an encrypted share for distribution, and — on a custodian's own machine
// (`vaultdr keys rotate-verify`, `submit-share --pgp-key`) — decrypting their new share. No key
// material or share is ever put into an error message.
import * as fs from 'node:fs';
import * as openpgp from 'openpgp';
import { readSecretJson } from './secretFile';

export interface Custodian {
  name: string;
  /** Armored PGP public key. */
  publicKey: string;
}

/** rotation.custodiansFile: [{"name", "publicKey"}] in share order. Errors name the file and the entry, never content. */
export function loadCustodians(file: string): Custodian[] {
  const json = readSecretJson(file, (problem) => new Error(`custodians file ${file} is ${problem}`));
  if (!Array.isArray(json) || json.length === 0) throw new Error(`custodians file ${file}: expected [{"name", "publicKey"}] with at least one custodian`);
  return json.map((c: unknown, i) => {
    const o = c as Partial<Custodian> | null;
    if (!o || typeof o.name !== 'string' || !o.name.trim() || typeof o.publicKey !== 'string' || !o.publicKey.includes('BEGIN PGP PUBLIC KEY BLOCK')) {
      throw new Error(`custodians file ${file}: entry #${i + 1} needs a "name" and an armored PGP "publicKey"`);
    }
    return { name: o.name.trim(), publicKey: o.publicKey };
  });
}

/** The key as sys/rotate/root/init's pgp_keys wants it (base64 of the binary key) and its fingerprint. */
export async function pgpKeyForBao(c: Custodian): Promise<{ name: string; pgpKey: string; fingerprint: string }> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: c.publicKey });
  } catch {
    throw new Error(`custodian ${c.name}: the public key does not parse as an OpenPGP key`);
  }
  if (key.isPrivate()) throw new Error(`custodian ${c.name}: a PRIVATE key was given where the public key belongs; remove it from the custodians file and treat it as exposed`);
  return { name: c.name, pgpKey: Buffer.from(key.write()).toString('base64'), fingerprint: key.getFingerprint() };
}

/** OpenBao returns each PGP-encrypted share hex-encoded; custodians get it armored. */
export async function armorEncryptedShare(hex: string): Promise<string> {
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
  await openpgp.readMessage({ binaryMessage: bytes }); // it must parse as a PGP message
  // Message.armor() answers a stream for a message read from bytes; armor the bytes directly.
  return openpgp.armor(openpgp.enums.armor.message, bytes);
}

/**
 * A custodian decrypts their share file (armored PGP message, or OpenBao's hex) with their private
 * key: the result is the unseal key share (hex) OpenBao accepts on sys/unseal and sys/rotate/root/verify.
 */
export async function decryptShare(encrypted: string, privateKeyArmored: string, passphrase?: string): Promise<string> {
  const text = encrypted.trim();
  let privateKey = await openpgp.readPrivateKey({ armoredKey: privateKeyArmored }).catch(() => {
    throw new Error('the private key does not parse as an OpenPGP private key');
  });
  if (!privateKey.isDecrypted()) {
    if (!passphrase) throw new Error('the private key is protected: give its passphrase (--passphrase-file)');
    privateKey = await openpgp.decryptKey({ privateKey, passphrase }).catch(() => {
      throw new Error('the passphrase does not unlock the private key');
    });
  }
  const message = text.includes('BEGIN PGP MESSAGE') ? await openpgp.readMessage({ armoredMessage: text }) : await openpgp.readMessage({ binaryMessage: new Uint8Array(Buffer.from(text, 'hex')) });
  try {
    const { data } = await openpgp.decrypt({ message, decryptionKeys: privateKey, format: 'utf8' });
    return String(data).trim();
  } catch {
    throw new Error('this share is not encrypted to that private key (another custodian\'s share?)');
  }
}

export const readText = (file: string, what: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${file} is unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
};
