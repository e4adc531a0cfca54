// backup-recipient rotation, backup host side (backup role: it holds the recipients file, public
// keys only). New backups stop being encrypted to a compromised recipient key: the file's entry is
// replaced by the new validation public key, and a probe data key wrapped for the file's recipients
// proves (on the restore host) that the new private key opens what new backups will carry.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { ErrorType, failure as fail } from '../../common/errors';
import type { Config } from '../../infra/config';
import { keyIdOf, loadRecipients, wrapDataKey, type Recipient, type WrappedKey } from '../../infra/crypto/keys';

export const recipientActivities = (deps: { cfg: Config }) => {
  const file = () => {
    const f = deps.cfg.backup.recipientsFile;
    if (!f) throw fail(ErrorType.KeyMaterialMissing, 'backup.recipientsFile is not set on this worker');
    return f;
  };
  const load = () => {
    try {
      return loadRecipients(file());
    } catch (err) {
      throw fail(ErrorType.KeyMaterialMissing, (err as Error).message);
    }
  };
  return {
    /** Replaces the compromised recipient by the new public key (idempotent: done when the new one is there and the old one gone). */
    async replaceRecipient(req: { compromisedKeyId: string; newKeyId: string; newPublicKey: string }): Promise<{ ok: boolean; detail: string; keyIds: string[] }> {
      if (keyIdOf(Buffer.from(req.newPublicKey, 'base64')) !== req.newKeyId) throw fail('RotationNotPossible', 'the new public key does not match its key id');
      const list = load();
      const has = (id: string) => list.some((r) => r.keyId === id);
      if (!has(req.compromisedKeyId) && has(req.newKeyId)) return { ok: true, keyIds: list.map((r) => r.keyId), detail: `already replaced: ${file()} lists ${req.newKeyId}, not ${req.compromisedKeyId}` };
      const old = list.find((r) => r.keyId === req.compromisedKeyId);
      if (!old) throw fail('RotationNotPossible', `field "scope": ${req.compromisedKeyId} is not a recipient in ${file()}`);
      if (old.role === 'escrow') throw fail('RotationNotPossible', `${req.compromisedKeyId} is the escrow key: it is replaced by a custodian ceremony (vaultdr keys init), not by rotateCredential`);
      const next: Recipient[] = list.map((r) => (r.keyId === req.compromisedKeyId ? { keyId: req.newKeyId, role: r.role, publicKey: req.newPublicKey } : r));
      const tmp = `${file()}.new`;
      fs.writeFileSync(tmp, JSON.stringify({ recipients: next }, null, 2) + '\n', { mode: 0o644 });
      fs.renameSync(tmp, file());
      return { ok: true, keyIds: next.map((r) => r.keyId), detail: `${file()}: ${req.compromisedKeyId} replaced by ${req.newKeyId}; the next backup is encrypted to ${next.map((r) => r.keyId).join(', ')}` };
    },

    /** A random probe key wrapped exactly as a new backup's data key would be (for the restore host to open). */
    async probeRecipients(): Promise<{ stanzas: WrappedKey[]; probeSha256: string; keyIds: string[] }> {
      const list = load();
      const probe = crypto.randomBytes(32);
      const stanzas = list.map((r) => wrapDataKey(probe, r));
      const probeSha256 = crypto.createHash('sha256').update(probe).digest('hex');
      probe.fill(0);
      return { stanzas, probeSha256, keyIds: list.map((r) => r.keyId) };
    },
  };
};

export type RecipientActivities = ReturnType<typeof recipientActivities>;
