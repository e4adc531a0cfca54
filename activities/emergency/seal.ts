// The emergency seal of breachResponse's containment (docs/runbooks/breach-response.md#emergencyseal):
// POST sys/seal on the active node with the break-glass token, then proof that the API refuses
// (sys/seal-status says sealed). Runs in the restore role, the only role holding a sudo-capable
// token (restore.productionTokenFile). OpenBao seals only the active node ("vault cannot seal when
// in standby mode"): standbys must be stopped by hand, which the runbook says and the result repeats.
// Idempotent: sealing a sealed server is reported, not repeated.
import * as fs from 'node:fs';
import { Agent, fetch } from 'undici';
import type { Config } from '../../infra/config';
import { readSecretFile } from '../../infra/config';
import { failure } from '../../common/errors';

export const sealActivities = (deps: { cfg: Config }) => {
  const address = () => deps.cfg.restore.productionAddress ?? deps.cfg.vault.address;
  let agent: Agent | undefined;
  const dispatcher = () => (deps.cfg.vault.caFile ? (agent ??= new Agent({ connect: { ca: fs.readFileSync(deps.cfg.vault.caFile) } })) : undefined);
  const call = async (method: string, p: string, token?: string) => {
    const res = await fetch(`${address()}/v1/${p}`, { method, headers: token ? { 'X-Vault-Token': token } : {}, dispatcher: dispatcher(), signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // A proxy's HTML error page: the status says enough.
    }
    return { status: res.status, json };
  };

  return {
    /** Seals the production cluster's active node and proves it is sealed. */
    async emergencySeal(req: { incidentId: string }): Promise<{ address: string; sealedAt: string; alreadySealed: boolean; detail: string }> {
      const before = await call('GET', 'sys/seal-status').catch((err: unknown) => {
        throw failure('VaultUnreachable', `${address()} unreachable before sealing: ${(err as Error).message}`);
      });
      if (before.json.sealed === true) return { address: address(), sealedAt: new Date().toISOString(), alreadySealed: true, detail: `${address()} was already sealed (incident ${req.incidentId})` };
      const file = deps.cfg.restore.productionTokenFile;
      if (!file) throw failure('SealFailed', 'restore.productionTokenFile is not set: this worker holds no token allowed to seal; seal by hand');
      const res = await call('POST', 'sys/seal', readSecretFile(file, 'restore.productionTokenFile'));
      if (res.status !== 204 && res.status !== 200) {
        const errors = Array.isArray(res.json.errors) ? (res.json.errors as string[]).join('; ') : '';
        throw failure('SealFailed', `POST ${address()}/v1/sys/seal answered ${res.status}${errors ? `: ${errors}` : ''}${/standby/.test(errors) ? ' (a standby: seal the active node, stop the standbys)' : ''}`);
      }
      const after = await call('GET', 'sys/seal-status');
      if (after.json.sealed !== true) throw failure('SealFailed', `${address()} still reports sealed=${String(after.json.sealed)} after sys/seal`);
      return { address: address(), sealedAt: new Date().toISOString(), alreadySealed: false, detail: `${address()} sealed; stop every standby node too (they do not seal through the API)` };
    },
  };
};

export type SealActivities = ReturnType<typeof sealActivities>;
