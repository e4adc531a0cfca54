// breachResponse's emergencySeal activity against a throwaway real OpenBao (never the shared
// stack's): it seals with the break-glass token and proves the API refuses afterwards; a second
// call finds it sealed and says so; a worker without the token, or a token without sudo on
// sys/seal, fails SealFailed and leaves the server serving.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { sealActivities } from '../activities/emergency/seal';
import { ConfigSchema, type Config } from '../infra/config';
import { startThrowawayBao, type ThrowawayBao } from './helpers/throwawayBao';

describe('emergencySeal on a throwaway OpenBao', function () {
  this.timeout(60_000);
  let bao: ThrowawayBao;
  const cfgFor = (tokenFile?: string): Config => {
    const base = ConfigSchema.parse({ codec: { keysFile: 'k' }, vault: { tokenFile: 't' } });
    return { ...base, restore: { ...base.restore, productionAddress: bao.address, ...(tokenFile ? { productionTokenFile: tokenFile } : {}) } };
  };
  const writeToken = (name: string, token: string) => {
    const f = path.join(bao.dir, name);
    fs.writeFileSync(f, `${token}\n`, { mode: 0o600 });
    return f;
  };
  const sealed = async () => (await bao.api('GET', 'sys/seal-status')).json.sealed as boolean;

  before(async () => {
    bao = await startThrowawayBao();
  });
  after(async () => bao?.stop());

  it('refuses without the break-glass token, or with a token that may not seal, and leaves the server serving', async () => {
    await assert.rejects(sealActivities({ cfg: cfgFor() }).emergencySeal({ incidentId: 'INC-1' }), (e: unknown) => e instanceof ApplicationFailure && e.type === 'SealFailed' && /productionTokenFile is not set/.test(e.message));
    const weak = (await bao.api('POST', 'auth/token/create', { policies: ['default'], ttl: '10m' })).json.auth.client_token as string;
    await assert.rejects(sealActivities({ cfg: cfgFor(writeToken('weak-token', weak)) }).emergencySeal({ incidentId: 'INC-1' }), (e: unknown) => e instanceof ApplicationFailure && e.type === 'SealFailed' && /answered 403/.test(e.message));
    assert.equal(await sealed(), false);
  });

  it('seals with the break-glass token, proves it, and reports an already sealed server on a retry', async () => {
    const acts = sealActivities({ cfg: cfgFor(writeToken('root-token', bao.rootToken)) });
    const first = await acts.emergencySeal({ incidentId: 'INC-2' });
    assert.equal(first.alreadySealed, false);
    assert.match(first.detail, /sealed; stop every standby/);
    assert.equal(await sealed(), true);
    const refused = await fetch(`${bao.address}/v1/sys/mounts`, { headers: { 'X-Vault-Token': bao.rootToken } });
    assert.equal(refused.status, 503, 'a sealed server still serves');
    const again = await acts.emergencySeal({ incidentId: 'INC-2' });
    assert.equal(again.alreadySealed, true);
  });
});
