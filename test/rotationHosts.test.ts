// Emergency rotation acting on the real mail host (issue 15 §2 wired to issue 14's adapters): with
// rotation.host set, mailbox-password sets the new password on new-vps through the migration's mail
// adapter (Dovecot's passwd-file from MailU's layout) and ssh-key edits root's authorized_keys over
// ssh2. Checked here independently of the workflow: SMTP AUTH on the host's submission port with the
// new password works and with the old one is refused; an SSH login with the new key works, the old
// key is refused, and the worker's own key still gets in. No old or new value reaches the history.
// Uses the local hosts (stack/mailhosts.ts): run under `flock /tmp/vaultdr-hosts.lock`.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { Client } from '@temporalio/client';
import nodemailer from 'nodemailer';
import { utils } from 'ssh2';
import { connectClient } from '../client/connect';
import type { RotateResult } from '../common/rotation';
import type { Config } from '../infra/config';
import { fingerprintOfKeyLine, keyAccepted, withSsh, type SshTarget } from '../infra/ssh/client';
import { runInHost, HOST_PATHS } from '../stack/mailhosts';
import { leaseHosts, prepareMigration, type MigrationFixture } from '../stack/migrationFixture';
import { ensureRotatorToken } from '../stack/stack';
import { bao, historyTexts } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const rand = () => crypto.randomBytes(4).toString('hex');

describe('rotateCredential on the real mail host: mailbox password and SSH key (local hosts)', function () {
  this.timeout(300_000);
  let fx: MigrationFixture;
  let cfg: Config;
  let client: Client;
  let release: (() => void) | undefined;
  let root: SshTarget;
  const timings: Record<string, number> = {};

  before(async () => {
    release = await leaseHosts();
    const base = withQueue(await ensureStack(), uniqueQueue('rotate-hosts'));
    fx = await prepareMigration(base, { prefix: 'rotation-hosts' });
    const tokenFile = await ensureRotatorToken();
    cfg = { ...fx.cfg, rotation: { ...fx.cfg.rotation, tokenFile, host: 'new', sshKeyFile: fx.hosts.provisionKey }, metrics: { listen: '' } };
    client = await connectClient(cfg);
    const n = fx.hosts.hosts['new-vps'];
    root = { address: n.address, port: n.sshPort, user: 'root', hostKeySha256: n.hostKeyFingerprint };
  });

  after(async () => {
    console.log(`      host rotation timings (ms): ${JSON.stringify(timings)}`);
    await client?.connection.close();
    release?.();
  });

  const rotate = async (input: Record<string, unknown>): Promise<{ result: RotateResult; workflowId: string }> => {
    const workflowId = `rotate-host-${String(input.credentialClass)}-${rand()}`;
    const t0 = Date.now();
    const result = await withWorker(cfg, () => client.workflow.execute('rotateCredential', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [input] }) as Promise<RotateResult>);
    timings[String(input.credentialClass)] = Date.now() - t0;
    return { result, workflowId };
  };
  const kv = async (p: string) => (await bao('GET', `secret/data/vault-dr/credentials/${p}`)).json.data?.data as Record<string, string> | undefined;
  const assertNotInHistory = async (workflowId: string, values: Record<string, string>) => {
    const h = await historyTexts(client, cfg, workflowId);
    const text = h.decoded.join('\n') + h.raw;
    assert.ok(text.includes('vault-dr/credentials/'), 'the decoded history does not even name the KV path: the leak check would see nothing');
    for (const [name, v] of Object.entries(values)) assert.ok(!text.includes(v), `${name} appears in the history of ${workflowId}`);
  };
  /** SMTP AUTH on new-vps's submission port (STARTTLS, the host's CA), as a mail client would. */
  const smtpAuth = async (user: string, pass: string): Promise<'ok' | 'refused'> => {
    const mh = cfg.migration.mailHost;
    const [host, port] = mh.submission!.split(':');
    const t = nodemailer.createTransport({ host, port: Number(port), secure: false, requireTLS: true, auth: { user, pass }, tls: { ca: fs.readFileSync(mh.caFile!), servername: mh.tlsServerName }, connectionTimeout: 10_000 });
    try {
      await t.verify();
      return 'ok';
    } catch (err) {
      if ((err as { code?: string }).code === 'EAUTH') return 'refused';
      throw err;
    } finally {
      t.close();
    }
  };

  it('mailbox-password: the new password is set on the mail host; SMTP AUTH takes it and refuses the old one', async () => {
    const email = fx.mailbox.email;
    const oldPassword = `old-${crypto.randomBytes(12).toString('base64url')}`;
    runInHost('new-vps', [HOST_PATHS.passwd, email], { input: `${oldPassword}\n` });
    await bao('POST', `secret/data/vault-dr/credentials/mailbox-password/${email}`, { data: { username: email, password: oldPassword } });
    assert.equal(await smtpAuth(email, oldPassword), 'ok', 'precondition: the old password works before the rotation');

    const { result, workflowId } = await rotate({ credentialClass: 'mailbox-password', scope: email });
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'mailbox-password', rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: '' }, result.detail);
    assert.match(result.detail, /applied through the mail host adapter/);
    const nu = (await kv(`mailbox-password/${email}`))!;
    assert.notEqual(nu.password, oldPassword);
    assert.equal(await smtpAuth(email, nu.password!), 'ok', 'the new password is refused by the mail host');
    assert.equal(await smtpAuth(email, oldPassword), 'refused', 'the old password is still accepted by the mail host');
    await assertNotInHistory(workflowId, { 'old mailbox password': oldPassword, 'new mailbox password': nu.password! });
  });

  it("ssh-key: the new key is added to root's authorized_keys and logs in; the old key is removed and refused; the worker's key stays", async () => {
    const old = utils.generateKeyPairSync('ed25519', { comment: 'root-old@ops' });
    runInHost('new-vps', ['sh', '-c', `sed -i -e '$a\\' ${HOST_PATHS.authorizedKeys}; cat >> ${HOST_PATHS.authorizedKeys}`], { input: `${old.public.trim()}\n` });
    await bao('POST', 'secret/data/vault-dr/credentials/ssh-key/root', { data: { private_key: old.private, public_key: old.public.trim() } });
    await withSsh(root, old.private, (s) => s.run('precondition', 'true'));
    const before = runInHost('new-vps', ['cat', HOST_PATHS.authorizedKeys]).split('\n').filter(fingerprintOfKeyLine);

    const { result, workflowId } = await rotate({ credentialClass: 'ssh-key', scope: 'root' });
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'ssh-key', rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: '' }, result.detail);
    const nu = (await kv('ssh-key/root'))!;
    assert.ok(nu.private_key?.includes('OPENSSH PRIVATE KEY'), 'the new private key is not in OpenSSH format');
    // Independently: a real login with the new key, the old key refused (no signature asked), the worker's provisioning key still in.
    assert.equal((await withSsh(root, nu.private_key!, (s) => s.run('login with the new key', 'id -un'))).trim(), 'root');
    assert.equal(await keyAccepted(root, old.public), false, 'the old key is still accepted');
    await assert.rejects(withSsh(root, old.private, (s) => s.run('login with the old key', 'true')), /refused/);
    await withSsh(root, fs.readFileSync(fx.hosts.provisionKey, 'utf8'), (s) => s.run("the worker's key", 'true'));
    const after = runInHost('new-vps', ['cat', HOST_PATHS.authorizedKeys]).split('\n').filter(fingerprintOfKeyLine);
    assert.deepEqual(
      after.map(fingerprintOfKeyLine),
      [...before.map(fingerprintOfKeyLine).filter((f) => f !== fingerprintOfKeyLine(old.public)), fingerprintOfKeyLine(nu.public_key!)],
      'authorized_keys should be the lines before, minus the old key, plus the new one',
    );
    await assertNotInHistory(workflowId, { 'old private key': old.private.split('\n')[2]!, 'new private key': nu.private_key!.split('\n')[2]! });
  });
});
