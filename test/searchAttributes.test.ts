// The custom search attributes (VaultDrStep, WaitingFor, BackupId, RestoreTarget) exist on the
// Temporal dev server the stack starts: a throwaway server started with the stack's own command
// line has them from the first second, and a server started before they existed (the long-running
// shared stack) gets them from registerSearchAttributes without a restart.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal as temporalProto } from '@temporalio/proto';
import { PORTS, registerSearchAttributes, SEARCH_ATTRIBUTES, temporalDevServerArgs } from '../stack/stack';
import { toolPaths } from '../stack/tools';
import { ensureStack } from './helpers/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEYWORD = temporalProto.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

async function customAttributes(conn: Connection): Promise<Record<string, number>> {
  const res = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
  return Object.fromEntries(Object.entries(res.customAttributes ?? {}).map(([k, v]) => [k, Number(v)]));
}

describe('search attributes on the Temporal dev server', function () {
  this.timeout(180_000);

  before(async () => {
    await ensureStack(); // also installs the temporal binary on a fresh machine
  });

  it('a dev server started with the stack\'s command line has every attribute, as Keyword', async () => {
    // Own ports and database: the shared stack's server keeps running undisturbed.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-sa-'));
    const port = 17244;
    const child: ChildProcess = spawn(toolPaths().temporal, temporalDevServerArgs({ port, uiPort: 18244, dbFile: path.join(dir, 'temporal.db') }), {
      detached: true,
      stdio: 'ignore',
    });
    try {
      let conn: Connection | undefined;
      let attrs: Record<string, number> | undefined;
      for (const until = Date.now() + 90_000; !attrs; await sleep(300)) {
        assert.equal(child.exitCode, null, 'the throwaway dev server exited during start-up');
        assert.ok(Date.now() < until, 'the throwaway dev server did not answer within 90s');
        conn ??= await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 }).catch(() => undefined);
        if (conn) attrs = await customAttributes(conn).catch(() => undefined); // the namespace appears shortly after the port
      }
      try {
        for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert.equal(attrs[name], KEYWORD, `${name} missing or not Keyword: ${JSON.stringify(attrs)}`);
        assert.deepEqual(await registerSearchAttributes(conn!, 'default'), [], 'nothing left to add on a fresh server');
      } finally {
        await conn!.close();
      }
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the running stack\'s server has them after registerSearchAttributes, which is idempotent', async () => {
    const conn = await Connection.connect({ address: `127.0.0.1:${PORTS.temporal}` });
    try {
      await registerSearchAttributes(conn, 'default');
      const attrs = await customAttributes(conn);
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert.equal(attrs[name], KEYWORD, `${name} missing or not Keyword`);
      assert.deepEqual(await registerSearchAttributes(conn, 'default'), []);
    } finally {
      await conn.close();
    }
  });
});
