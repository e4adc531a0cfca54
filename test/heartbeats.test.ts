// Activities under the STORE_IO profile run with a 20 s heartbeat timeout, so each must heartbeat
// while it runs (else every attempt would time out), and a killed worker costs 20 s, not 2 min.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { BACKUP_STORE_IO, backupActivities } from '../activities/backup/backup';
import { RESTORE_STORE_IO } from '../activities/restore/restore';
import { buildClients } from '../infra/clients';
import { STORE_IO } from '../workflows/profiles';
import { ensureStack, PROJECT_ROOT } from './helpers/stack';

describe('STORE_IO activities heartbeat', function () {
  it('every activity a workflow binds to the STORE_IO profile is one that heartbeats', () => {
    assert.equal(STORE_IO.heartbeatTimeout, '20s');
    const heartbeating = new Set<string>([...BACKUP_STORE_IO, ...RESTORE_STORE_IO]);
    const bound = new Set<string>();
    for (const f of ['backup/backupVault.ts', 'restore/restoreVault.ts']) {
      const src = fs.readFileSync(path.join(PROJECT_ROOT, 'workflows', f), 'utf8');
      // Activities are bound to their profile at the proxy: `const { a, b } = proxyActivities<T>({ ...STORE_IO, ... })`.
      const proxies = [...src.matchAll(/const \{([^}]+)\} = proxyActivities<\w+>\(\{ \.\.\.(\w+)\b/g)];
      assert.ok(proxies.length >= 2, `${f}: activities are bound per profile by destructuring`);
      assert.doesNotMatch(src, /const \w+ = proxyActivities\b/, `${f}: a proxy object would let any activity run under any profile`);
      for (const [, names, profile] of proxies) if (profile === 'STORE_IO') for (const n of names!.split(',')) bound.add(n.trim());
    }
    // 8 since the unseal wait polls through pollTargetUnsealed under POLL (workflows/helpers.ts), which heartbeats itself.
    assert.ok(bound.size >= 8, [...bound].join(', '));
    assert.deepEqual([...bound].filter((n) => !heartbeating.has(n)), []);
  });

  it('checkBackupBucket heartbeats inside an activity and runs plainly outside one (CLI, bench)', async () => {
    const cfg = await ensureStack();
    const acts = backupActivities({ ...buildClients(cfg), cfg });
    const env = new MockActivityEnvironment({ activityType: 'checkBackupBucket' });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const report = (await env.run(acts.checkBackupBucket)) as Awaited<ReturnType<typeof acts.checkBackupBucket>>;
    assert.equal(report.bucket, cfg.s3.bucket);
    assert.deepEqual(beats[0], { stage: 'checkBackupBucket' });
    assert.equal((await acts.checkBackupBucket()).bucket, cfg.s3.bucket);
  });
});
