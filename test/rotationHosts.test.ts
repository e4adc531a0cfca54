// Emergency rotation acting on the real mail host (issue 15 §2 wired to issue 14's adapters): with
// rotation.host set, mailbox-password sets the new password on new-vps through the migration's mail
// adapter (Dovecot's passwd-file from MailU's layout) and ssh-key edits root's authorized_keys over
// ssh2. Checked here independently of the workflow: SMTP AUTH on the host's submission port with the
// new password works and with the old one is refused; an SSH login with the new key works, the old
// key is refused, and the worker's own key still gets in. smtp-relay: the relay Mailpit requires
// SMTP AUTH and the test plays the relay provider (setRelayLogins: issue and revoke logins); a
// responder stores the new login in Vault and names the path through relayPasswordStored (malformed
// updates rejected); the rotation writes it to new-vps's Postfix, which then relays a probe the relay
// accepts, and the old login is refused by the relay (535). When the provider has not revoked the
// old login the result says so; when the new one never works the host goes back to the old one.
// No old or new value reaches the history.
// Uses the local hosts (stack/mailhosts.ts): run under `flock /tmp/vaultdr-hosts.lock`.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import nodemailer from 'nodemailer';
import { connectClient } from '../client/connect';
import type { RotateResult } from '../common/rotation';
import type { Config } from '../infra/config';
import { fingerprintOfKeyLine, keyAccepted, newSshKeyPair, withSsh, type SshTarget } from '../infra/ssh/client';
import { runInHost, setRelayLogins, HOST_PATHS, type RelayCredentials } from '../stack/mailhosts';
import { parseEnv, updateEnv } from '../infra/mailhost/files';
import { awaitRelayedMessage } from '../activities/migration/mailChecks';
import { leaseHosts, prepareMigration, type MigrationFixture } from '../stack/migrationFixture';
import { ensureRotatorToken } from '../stack/stack';
import { activityPhases, bao, historyTexts, mailpitMessages, mailpitText, stackSecrets, vaultdrAsync } from './helpers/inspect';
import { saveDecoded } from './saveHistories';
import { rotationActivities } from '../activities/emergency/rotation';
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
    // The relay back to the harness's own login only.
    await setRelayLogins([]).catch((e: Error) => console.log(`      relay reset failed: ${e.message}`));
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
    const old = newSshKeyPair('root-old@ops');
    runInHost('new-vps', ['sh', '-c', `sed -i -e '$a\\' ${HOST_PATHS.authorizedKeys}; cat >> ${HOST_PATHS.authorizedKeys}`], { input: `${old.publicKey}\n` });
    await bao('POST', 'secret/data/vault-dr/credentials/ssh-key/root', { data: { private_key: old.privateKey, public_key: old.publicKey } });
    await withSsh(root, old.privateKey, (s) => s.run('precondition', 'true'));
    const before = runInHost('new-vps', ['cat', HOST_PATHS.authorizedKeys]).split('\n').filter(fingerprintOfKeyLine);

    const { result, workflowId } = await rotate({ credentialClass: 'ssh-key', scope: 'root' });
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'ssh-key', rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: '' }, result.detail);
    const nu = (await kv('ssh-key/root'))!;
    assert.ok(nu.private_key?.includes('OPENSSH PRIVATE KEY'), 'the new private key is not in OpenSSH format');
    // Independently: a real login with the new key, the old key refused (no signature asked), the worker's provisioning key still in.
    assert.equal((await withSsh(root, nu.private_key!, (s) => s.run('login with the new key', 'id -un'))).trim(), 'root');
    assert.equal(await keyAccepted(root, old.publicKey), false, 'the old key is still accepted');
    await assert.rejects(withSsh(root, old.privateKey, (s) => s.run('login with the old key', 'true')), /refused/);
    await withSsh(root, fs.readFileSync(fx.hosts.provisionKey, 'utf8'), (s) => s.run("the worker's key", 'true'));
    const after = runInHost('new-vps', ['cat', HOST_PATHS.authorizedKeys]).split('\n').filter(fingerprintOfKeyLine);
    assert.deepEqual(
      after.map(fingerprintOfKeyLine),
      [...before.map(fingerprintOfKeyLine).filter((f) => f !== fingerprintOfKeyLine(old.publicKey)), fingerprintOfKeyLine(nu.public_key!)],
      'authorized_keys should be the lines before, minus the old key, plus the new one',
    );
    await assertNotInHistory(workflowId, { 'old private key': old.privateKey.split('\n')[2]!, 'new private key': nu.private_key!.split('\n')[2]! });
  });
  // ---- smtp-relay: the relay provider issues the login, a responder stores it, vault-dr applies and proves it ----

  const relayLogin = async (user: string, pass: string): Promise<'ok' | 535 | number> => {
    const t = nodemailer.createTransport({ host: fx.hosts.relay.smtpHost, port: fx.hosts.relay.smtpPort, secure: false, requireTLS: true, auth: { user, pass }, tls: { ca: fs.readFileSync(fx.hosts.relay.caFile) }, connectionTimeout: 10_000 });
    try {
      await t.verify();
      return 'ok';
    } catch (err) {
      const e = err as { code?: string; responseCode?: number };
      if (e.code === 'EAUTH') return e.responseCode ?? -1;
      throw err;
    } finally {
      t.close();
    }
  };
  const hostEnv = () => parseEnv(runInHost('new-vps', ['cat', '/mailu/mailu.env']));
  /** new-vps relays with `login` (what it had before the incident), applied the way the host does it. */
  const hostRelaysWith = (login: RelayCredentials) => {
    const env = runInHost('new-vps', ['cat', '/mailu/mailu.env']);
    runInHost('new-vps', ['sh', '-c', 'umask 077; cat > /mailu/mailu.env'], { input: updateEnv(env, { RELAYHOST: `[${fx.hosts.relay.smtpHost}]:${fx.hosts.relay.smtpPort}`, RELAYUSER: login.username, RELAYPASSWORD: login.password }) });
    runInHost('new-vps', ['/opt/mailu-local/apply', 'relay']);
  };
  const newLogin = (tag: string): RelayCredentials => ({ username: `${tag}-${rand()}@vaultdr.test`, password: `${tag}-${crypto.randomBytes(12).toString('base64url')}` });
  const folder = 'secret/data/vault-dr/credentials';

  /**
   * One relay rotation: the host relays with `old`; once the workflow waits, `provider` runs (the
   * relay's logins change), `store` writes the responder's value to Vault and returns the update.
   */
  const rotateRelay = async (old: RelayCredentials, provider: () => Promise<void>, store: (h: WorkflowHandle) => Promise<Record<string, unknown> | undefined>, fixture?: string) => {
    await setRelayLogins([old]);
    await bao('POST', `${folder}/smtp-relay/${old.username}`, { data: { host: fx.hosts.relay.smtpHost, port: String(fx.hosts.relay.smtpPort), username: old.username, password: old.password } });
    hostRelaysWith(old);
    assert.equal(await relayLogin(old.username, old.password), 'ok', 'precondition: the relay takes the old login');
    const workflowId = `rotate-relay-${rand()}`;
    const phases: Record<string, number> = {};
    const result = await withWorker(cfg, async () => {
      let t = Date.now();
      const h = await client.workflow.start('rotateCredential', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ credentialClass: 'smtp-relay', scope: old.username }] });
      for (let i = 0; i < 300; i++) {
        const p = await h.query<{ step: string }>('progress');
        if (p.step === 'awaitRelayPasswordStored') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const p = await h.query<{ step: string; waitingFor?: string }>('progress');
      assert.equal(p.step, 'awaitRelayPasswordStored');
      assert.match(p.waitingFor ?? '', /relay-stored .*--path secret\/data\/vault-dr\/credentials\/smtp-relay\//);
      phases.plan = Date.now() - t;
      await provider();
      t = Date.now();
      const update = await store(h);
      if (update) await h.executeUpdate('relayPasswordStored', { args: [update as never] });
      const r = (await h.result()) as RotateResult;
      phases.applyAndVerify = Date.now() - t;
      // The replay fixture of this path (test/histories): VAULTDR_SAVE_HISTORY=1 when the workflow changes on purpose.
      if (fixture && process.env.VAULTDR_SAVE_HISTORY) await saveDecoded(client, cfg, h, fixture);
      return r;
    });
    timings[`smtp-relay ${result.rotated ? 'rotated' : result.oldLeftInPlace ? 'old left in place' : 'old still accepted'}`] = phases.applyAndVerify!;
    timings['smtp-relay plan→waiting'] = phases.plan!;
    console.log(`      phases (ms): ${JSON.stringify(await activityPhases(client, workflowId))}`);
    return { result, workflowId };
  };

  it('smtp-relay: the responder stores the new relay login; the host relays with it, the relay accepts the probe and refuses the old login (535)', async () => {
    const old = newLogin('relay-old');
    const nu = { username: old.username, password: `relay-new-${crypto.randomBytes(12).toString('base64url')}` };
    const { result, workflowId } = await rotateRelay(
      old,
      // The provider issues a new password for the account and revokes the old one.
      () => setRelayLogins([nu]),
      async (h) => {
        await bao('POST', `${folder}/smtp-relay/${old.username}`, { data: { username: nu.username, password: nu.password } });
        // The responder's own command: the path, never the password.
        const cli = await vaultdrAsync(['rotate', 'relay-stored', h.workflowId, '--who', 'Dana', '--path', `${folder}/smtp-relay/${old.username}`, '--old-revoked']);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, /accepted/);
        return undefined;
      },
      'rotateCredential-smtp-relay',
    );
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'smtp-relay', rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: '' }, result.detail);
    assert.match(result.detail, /Dana stored the new relay login/);
    assert.match(result.detail, /accepted by the relay \(250/);
    // Independently: the host's Postfix settings hold the new login, the relay has the probe, the old login gets 535.
    const env = hostEnv();
    assert.equal(env.RELAYUSER, nu.username);
    assert.equal(env.RELAYPASSWORD, nu.password, 'mailu.env does not hold the new relay password');
    const sasl = runInHost('new-vps', ['cat', '/etc/postfix/sasl_passwd']);
    assert.ok(sasl.includes(`:${nu.password}`), "Postfix's sasl_passwd was not rendered with the new password");
    await awaitRelayedMessage({ inboxUrl: fx.hosts.relay.httpUrl, marker: `vault-dr relay probe ${workflowId}`, timeoutMs: 5_000 });
    assert.equal(await relayLogin(old.username, old.password), 535, 'the relay does not refuse the old login with 535');
    assert.equal(await relayLogin(nu.username, nu.password), 'ok');
    await assertNotInHistory(workflowId, { 'old relay password': old.password, 'new relay password': nu.password });
    // A retried (or resumed after a SIGKILL) apply step re-uses the rotation's own copy: no second KV version.
    const meta = async () => (await bao('GET', `secret/metadata/vault-dr/credentials/smtp-relay/${old.username}`)).json.data.current_version as number;
    const before = await meta();
    const kvPath = `${folder}/smtp-relay/${old.username}`;
    const again = await rotationActivities({ cfg }).applyRelayCredential({
      plan: { credentialClass: 'smtp-relay', scope: old.username, rotationId: `${workflowId}/smtp-relay/${old.username}`, kvPath, mode: 'person', hook: { name: 'mail adapter', wired: true }, relay: { oldVersion: before - 2, intakeFolder: `${folder}/` } },
      source: { kvPath },
    });
    assert.equal(again.reused, true, again.detail);
    assert.equal(await meta(), before, 'a retried apply wrote another KV version');
    assert.equal(hostEnv().RELAYPASSWORD, nu.password);
  });

  it('smtp-relay: a malformed relayPasswordStored (a pasted password, a path outside the folder, no who) is rejected; the old login still working at the provider is said in the result', async () => {
    const old = newLogin('relay-keep');
    const nu = newLogin('relay-second');
    const incoming = `${folder}/smtp-relay-incoming/${rand()}`;
    let rejected: string[] = [];
    const { result, workflowId } = await rotateRelay(
      old,
      // The provider issues a second login and leaves the old one working.
      () => setRelayLogins([old, nu]),
      async (h) => {
        const reject = async (u: unknown) => h.executeUpdate('relayPasswordStored', { args: [u as never] }).then(() => assert.fail(`accepted ${JSON.stringify(u)}`), (e: Error) => String((e.cause as Error | undefined)?.message ?? e.message));
        rejected = [
          await reject({ who: 'Eve', kvPath: incoming, oldRevoked: false, password: nu.password }),
          await reject({ who: 'Eve', kvPath: 'secret/data/vault-dr/alerting/slack', oldRevoked: false }),
          await reject({ who: '', kvPath: incoming, oldRevoked: false }),
        ];
        const written = (await bao('POST', incoming, { data: { username: nu.username, password: nu.password } })).json.data.version as number;
        return { who: 'Eve', kvPath: incoming, version: written, oldRevoked: false };
      },
    );
    assert.match(rejected[0]!, /unrecognized key|password/i);
    assert.match(rejected[1]!, /must be under secret\/data\/vault-dr\/credentials\//);
    assert.match(rejected[2]!, /field "who"/);
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'smtp-relay', rotated: false, newVerified: true, oldRefused: false, oldLeftInPlace: false, detail: '' }, result.detail);
    assert.match(result.detail, /STILL WORKS at the relay .*provider has not revoked it/);
    assert.equal(hostEnv().RELAYUSER, nu.username, 'the host does not relay with the new login');
    assert.equal(await relayLogin(old.username, old.password), 'ok', 'the provider kept the old login: it must still work');
    const h = await historyTexts(client, cfg, workflowId);
    assert.ok(!(h.decoded.join('\n') + h.raw).includes(nu.password), 'the rejected update carrying a password reached the history');
    await assertNotInHistory(workflowId, { 'old relay password': old.password, 'new relay password': nu.password });
  });

  it('smtp-relay: a new login the relay never takes is undone on the host; the old one is left in place and the result says so', async () => {
    const old = newLogin('relay-undo');
    const wrong = { username: old.username, password: `never-issued-${crypto.randomBytes(12).toString('base64url')}` };
    const mailBefore = new Set((await mailpitMessages()).map((m) => m.ID));
    const { result, workflowId } = await rotateRelay(
      old,
      async () => undefined, // the provider never activated the new password
      async () => {
        await bao('POST', `${folder}/smtp-relay/${old.username}`, { data: { username: wrong.username, password: wrong.password } });
        return { who: 'Dana', kvPath: `${folder}/smtp-relay/${old.username}`, oldRevoked: false };
      },
    );
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'smtp-relay', rotated: false, newVerified: false, oldRefused: false, oldLeftInPlace: true, detail: '' }, result.detail);
    assert.match(result.detail, /refuses the new login .*535/);
    assert.match(result.detail, /old relay login was written back/);
    assert.equal(hostEnv().RELAYPASSWORD, old.password, 'the host was not put back on the old relay login');
    assert.equal((await kv(`smtp-relay/${old.username}`))!.password, old.password, 'KV does not hold the old (working) login again');
    assert.equal(await relayLogin(old.username, old.password), 'ok');
    await assertNotInHistory(workflowId, { 'old relay password': old.password, 'never-issued password': wrong.password, ...Object.fromEntries(stackSecrets().map((x) => [x.name, x.value])) });
    // The stopped class alerts (critical): the e-mail says what was left in place and holds no password.
    let mail: string | undefined;
    for (let i = 0; i < 30 && !mail; i++) {
      for (const m of (await mailpitMessages()).filter((x) => !mailBefore.has(x.ID))) {
        const text = await mailpitText(m.ID);
        if (text.includes(workflowId)) mail = `${m.Subject}\n${text}`;
      }
      if (!mail) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(mail, 'no alert e-mail for the stopped relay rotation');
    assert.match(mail, /left in place/);
    for (const v of [old.password, wrong.password, ...stackSecrets().map((x) => x.value)]) assert.ok(!mail.includes(v), 'the alert e-mail holds a password or a stack secret');
  });
});
