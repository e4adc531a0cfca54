// AES-256-GCM payload codec: every Temporal payload the worker or client writes is encrypted
// before it reaches the server. The key id travels in payload metadata, so keys rotate by adding
// a new key and making it current; old keys stay in the keyring until no history needs them.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError } from '../config';
import { asObject, readSecretJson } from '../secretFile';

export const ENCODING = 'binary/encrypted';
const KEY_ID_KEY = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface Keyring {
  current: string;
  keys: Map<string, Buffer>;
}

/** Parses a keyring file: {"current": "k1", "keys": {"k1": "<base64 of 32 bytes>"}}. Errors never quote the file. */
export function loadKeyring(file: string): Keyring {
  const json = asObject(readSecretJson(file, (problem) => new ConfigError(`config: codec keyring ${file} is ${problem}`)));
  const entries = asObject(json?.keys);
  if (!json || typeof json.current !== 'string' || !entries) {
    throw new ConfigError(`config: codec keyring ${file}: expected {"current": string, "keys": {id: base64}}`);
  }
  const keys = new Map<string, Buffer>();
  Object.entries(entries).forEach(([id, b64], i) => {
    const key = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    // Entries are named by position: a mistake could have put key material where an id belongs.
    if (key.length !== 32) throw new ConfigError(`config: codec keyring ${file}: key #${i + 1} in "keys" must be 32 bytes of base64`);
    keys.set(id, key);
  });
  if (!keys.has(json.current)) throw new ConfigError(`config: codec keyring ${file}: "current" names no key in "keys"`);
  return { current: json.current, keys };
}

/** Creates a keyring file (0600) with one fresh random key, unless it exists. */
export function ensureKeyringFile(file: string): void {
  if (fs.existsSync(file)) return;
  const id = `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
  const body = JSON.stringify({ current: id, keys: { [id]: crypto.randomBytes(32).toString('base64') } }, null, 2);
  fs.writeFileSync(file, body + '\n', { mode: 0o600, flag: 'wx' });
}

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keyring.keys.get(this.keyring.current)!;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = crypto.randomBytes(IV_BYTES);
      const cipher = crypto.createCipheriv(CIPHER, key, iv);
      // The key id is bound as AAD so a payload cannot be relabelled to another key.
      cipher.setAAD(Buffer.from(this.keyring.current));
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCODING),
          [KEY_ID_KEY]: Buffer.from(this.keyring.current),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || Buffer.from(encoding).toString() !== ENCODING) return payload;
      const keyIdRaw = payload.metadata?.[KEY_ID_KEY];
      if (!keyIdRaw) throw new Error('encrypted payload has no key id');
      const keyId = Buffer.from(keyIdRaw).toString();
      const key = this.keyring.keys.get(keyId);
      if (!key) throw new Error(`encrypted payload uses unknown key id "${keyId}"`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted payload is truncated');
      const decipher = crypto.createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/** The compiled common/failureConverter.js: bundleWorkflowCode needs it too when a bundle is built ahead. */
export const FAILURE_CONVERTER_PATH = require.resolve('../../common/failureConverter');

/**
 * The data converter for every worker and client: payloads through the codec, and failures'
 * messages and stack traces encoded (then encrypted by the same codec) instead of stored in plaintext.
 */
export function dataConverter(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}
