// Smoke test of the local VPS hosts (stack/mailhosts.ts, issue 14 §2): both hosts come up (twice:
// idempotent), answer SSH with the host key the harness printed and let root in by key only; new-vps,
// configured the way the migration's adapter does it (MailU's mailu.env and dkim/<domain>.dkim.key
// written over SSH, mailbox password through /opt/mailu-local/passwd, then /opt/mailu-local/apply),
// takes a submission with SASL AUTH and relays it to the Mailpit that requires the relay credentials,
// signed so that mailauth finds DKIM, SPF and DMARC pass against the harness's DNS; a wrong relay
// password keeps the mail queued with the relay's refusal; IMAP and Roundcube logins work with the
// mailbox password and fail without it.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';
import { checkAuthentication, findReceivedMessage, imapLogin, roundcubeLogin, submitMail } from '../infra/mailhost/checks';
import {
  acquireHostsLease,
  DKIM_SELECTOR,
  dkimPublicKeyOf,
  hostsUp,
  mailauthResolver,
  MAIL_DOMAIN,
  NETWORK,
  publishZone,
  relayCredentials,
  resetHost,
  stopHost,
  tcpOpen,
  type HostsInfo,
  mailuEnvFile,
} from '../stack/mailhosts';
import * as fs from 'node:fs';

const NEW = NETWORK.hosts['new-vps'];
const MAILBOX = `admin@${MAIL_DOMAIN}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sha256Fingerprint(key: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One SSH session as root with the host key pinned by fingerprint; runs each command with optional stdin. */
async function ssh(host: string, pinned: string, privateKey: string | Buffer, cmds: { cmd: string; stdin?: string }[]): Promise<ExecResult[]> {
  const c = new Client();
  let seen = '';
  const cfg: ConnectConfig = {
    host,
    port: 22,
    username: 'root',
    privateKey,
    readyTimeout: 5_000,
    hostVerifier: (key: Buffer) => {
      seen = sha256Fingerprint(key);
      return seen === pinned;
    },
  };
  await new Promise<void>((resolve, reject) => {
    c.once('ready', resolve);
    c.once('error', (e) => reject(new Error(`${e.message}${seen && seen !== pinned ? ` (host key ${seen}, pinned ${pinned})` : ''}`)));
    c.connect(cfg);
  });
  try {
    const out: ExecResult[] = [];
    for (const { cmd, stdin } of cmds) {
      out.push(
        await new Promise<ExecResult>((resolve, reject) => {
          c.exec(cmd, (err, stream) => {
            if (err) return reject(err);
            let stdout = '';
            let stderr = '';
            stream.on('data', (d: Buffer) => (stdout += d.toString()));
            stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
            stream.on('close', (code: number) => resolve({ code, stdout, stderr }));
            stream.end(stdin ?? '');
          });
        }),
      );
    }
    return out;
  } finally {
    c.end();
  }
}

const mailuEnv = mailuEnvFile;

describe('mail hosts: old-vps and new-vps (SSH, Postfix+SASL, Dovecot, OpenDKIM, Roundcube, relay with AUTH, DNS)', function () {
  this.timeout(180_000);
  let info: HostsInfo;
  let release: () => void = () => {};
  let provisionKey: Buffer;
  const mailboxPassword = crypto.randomBytes(12).toString('base64url');
  const dkim = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

  before(async () => {
    release = await acquireHostsLease();
    const first = await hostsUp();
    info = first.info;
    provisionKey = fs.readFileSync(info.provisionKey);
  });
  after(() => release());

  it('comes up idempotently: a second up starts nothing and keeps the host keys', async () => {
    const again = await hostsUp();
    for (const s of again.steps.filter((x) => /sshd|nsd|relay|mail services/.test(x))) assert.match(s, /already running/, s);
    for (const h of ['old-vps', 'new-vps'] as const) {
      assert.equal(again.info.hosts[h].hostKeyFingerprint, info.hosts[h].hostKeyFingerprint);
      assert.match(info.hosts[h].hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    }
    assert.notEqual(info.hosts['old-vps'].hostKeyFingerprint, info.hosts['new-vps'].hostKeyFingerprint);
  });

  it('lets root in by key on each host, with the printed host key; refuses another key, a password and a wrong pin', async () => {
    for (const h of ['old-vps', 'new-vps'] as const) {
      const [who] = await ssh(info.hosts[h].address, info.hosts[h].hostKeyFingerprint, provisionKey, [{ cmd: 'hostname; id -u; ip -4 -o addr show eth0' }]);
      assert.equal(who!.code, 0, who!.stderr);
      const [name, uid, addr] = who!.stdout.trim().split('\n');
      assert.equal(name, h);
      assert.equal(uid, '0');
      assert.match(addr!, new RegExp(`inet ${info.hosts[h].address.replace(/\./g, '\\.')}/24`));
    }
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    await assert.rejects(ssh(NEW, info.hosts['new-vps'].hostKeyFingerprint, other, [{ cmd: 'true' }]), /authentication methods failed/);
    const pw = new Client();
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        pw.once('ready', resolve);
        pw.once('error', reject);
        pw.connect({ host: NEW, username: 'root', password: 'anything', readyTimeout: 10_000, hostVerifier: () => true });
      }),
      /authentication methods failed/,
    );
    pw.end();
    await assert.rejects(ssh(NEW, info.hosts['old-vps'].hostKeyFingerprint, provisionKey, [{ cmd: 'true' }]), new RegExp(`host key ${info.hosts['new-vps'].hostKeyFingerprint.replace(/[+/]/g, '\\$&')}`));
  });

  it('takes a host down (unplugged: connections time out) and brings it back with the same host key', async () => {
    const old = info.hosts['old-vps'];
    assert.ok((await stopHost('old-vps', { unplug: true })) >= 1);
    assert.equal(await tcpOpen(old.address, 22, 1500), false);
    await assert.rejects(ssh(old.address, old.hostKeyFingerprint, provisionKey, [{ cmd: 'true' }]), /Timed out/);
    const back = await hostsUp();
    assert.match(back.steps.find((s) => s.startsWith('old-vps'))!, /sshd started/);
    const [r] = await ssh(old.address, old.hostKeyFingerprint, provisionKey, [{ cmd: 'hostname' }]);
    assert.equal(r!.stdout.trim(), 'old-vps');
  });

  describe('new-vps configured from MailU files over SSH', () => {
    const relay = () => relayCredentials();
    const pin = () => info.hosts['new-vps'].hostKeyFingerprint;
    const configure = async (relayPassword: string) => {
      const res = await ssh(NEW, pin(), provisionKey, [
        { cmd: 'umask 077 && mkdir -p /mailu/dkim && cat > /mailu/mailu.env.new && mv /mailu/mailu.env.new /mailu/mailu.env', stdin: mailuEnv(relayPassword, relay().username) },
        { cmd: `umask 077 && cat > /mailu/dkim/${MAIL_DOMAIN}.${DKIM_SELECTOR}.key`, stdin: dkim.privateKey },
        { cmd: `/opt/mailu-local/passwd ${MAILBOX}`, stdin: `${mailboxPassword}\n` },
        { cmd: '/opt/mailu-local/apply' },
      ]);
      for (const r of res) assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      return res[3]!.stdout;
    };

    before(async () => {
      await resetHost('new-vps');
      await publishZone({ domain: MAIL_DOMAIN, dkimPublicKey: dkimPublicKeyOf(dkim.privateKey) });
      const out = await configure(relay().password);
      assert.match(out, /mail services up for vaultdr\.test \(selector dkim, relay \[10\.231\.0\.1\]:587\)/);
    });

    it('relays a SASL-authenticated submission to the AUTH Mailpit, DKIM-signed: mailauth says dkim, spf and dmarc pass', async () => {
      const subject = `hosts smoke ${crypto.randomUUID()}`;
      const sent = await submitMail({ host: NEW, user: MAILBOX, pass: mailboxPassword, from: MAILBOX, to: ['check@example.net', MAILBOX], subject, text: 'DKIM check\n' });
      assert.match(sent.response, /^250 /);
      const m = await findReceivedMessage(info.relay.httpUrl, subject, 20_000);
      assert.ok(m, 'the relay Mailpit received the message');
      assert.equal(m.username, relay().username, 'Postfix logged in to the relay with the relay credentials');
      const raw = m.raw;
      assert.match(raw, /^Received: from mail\.vaultdr\.test \(unknown \[10\.231\.0\.3\]\)/m, 'the relay saw new-vps connect');
      // ip and helo come from the relay's Received header, as the receiver recorded them.
      const auth = await checkAuthentication(raw, { sender: MAILBOX, mta: `relay.${MAIL_DOMAIN}`, resolver: mailauthResolver(), domain: MAIL_DOMAIN, selector: DKIM_SELECTOR });
      assert.ok(auth.dkimPass, JSON.stringify(auth.dkim));
      assert.equal(auth.spf, 'pass');
      assert.equal(auth.dmarc, 'pass');

      // The same message against a zone publishing another key: the check fails (it can fail).
      const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
      await publishZone({ domain: MAIL_DOMAIN, dkimPublicKey: dkimPublicKeyOf(other.privateKey) });
      try {
        const bad = await checkAuthentication(raw, { sender: MAILBOX, mta: `relay.${MAIL_DOMAIN}`, resolver: mailauthResolver(), domain: MAIL_DOMAIN, selector: DKIM_SELECTOR });
        assert.equal(bad.dkimPass, false);
        assert.equal(bad.dkim[0]!.result, 'fail');
      } finally {
        await publishZone({ domain: MAIL_DOMAIN, dkimPublicKey: dkimPublicKeyOf(dkim.privateKey) });
      }

      // The copy for the local mailbox went through LMTP into Dovecot.
      const imap = await imapLogin({ host: NEW, user: MAILBOX, pass: mailboxPassword });
      assert.ok(imap.inboxMessages >= 1, `INBOX has ${imap.inboxMessages} messages`);
    });

    it('keeps mail queued with the relay refusal when RELAYPASSWORD is wrong, and delivers it once mailu.env is fixed', async () => {
      await configure(`${relay().password}-wrong`);
      const subject = `hosts wrong relay ${crypto.randomUUID()}`;
      await submitMail({ host: NEW, user: MAILBOX, pass: mailboxPassword, from: MAILBOX, to: ['check@example.net'], subject, text: 'relay auth\n' });
      let reason = '';
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !reason) {
        const [q] = await ssh(NEW, pin(), provisionKey, [{ cmd: 'postqueue -j' }]);
        reason = q!.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { recipients: { delay_reason?: string }[] })
          .flatMap((e) => e.recipients.map((r) => r.delay_reason ?? ''))
          .find((r) => /SASL authentication failed/.test(r)) ?? '';
        if (!reason) await sleep(300);
      }
      assert.match(reason, /SASL authentication failed.*535/);
      assert.equal(await findReceivedMessage(info.relay.httpUrl, subject, 0), undefined, 'nothing reached the relay');
      assert.doesNotMatch(reason, new RegExp(relay().password), 'the queue shows no password');

      await configure(relay().password); // apply flushes the queue
      assert.ok(await findReceivedMessage(info.relay.httpUrl, subject, 20_000), 'delivered after the fix');
    });

    it('logs in over IMAP (143 STARTTLS, 993), submits on 465 and logs in to Roundcube (form, session cookie, inbox page) with the mailbox password, and not with another', async () => {
      const imap = await imapLogin({ host: NEW, user: MAILBOX, pass: mailboxPassword });
      assert.equal(imap.authenticated, true);
      // MailU's default ports: IMAPS 993 and submissions 465, implicit TLS.
      assert.equal((await imapLogin({ host: NEW, port: 993, implicitTls: true, user: MAILBOX, pass: mailboxPassword })).authenticated, true);
      const smtps = await submitMail({ host: NEW, port: 465, implicitTls: true, user: MAILBOX, pass: mailboxPassword, from: MAILBOX, to: [MAILBOX], subject: 'over 465', text: 'implicit TLS\n' });
      assert.match(smtps.response, /^250 /);
      await assert.rejects(imapLogin({ host: NEW, user: MAILBOX, pass: 'not-the-password' }), /IMAP login refused/);

      const web = await roundcubeLogin({ url: `http://${NEW}/`, user: MAILBOX, pass: mailboxPassword });
      assert.equal(web.loginStatus, 302);
      assert.ok(web.sessionCookies.includes('roundcube_sessauth'), web.sessionCookies.join(','));
      assert.equal(web.inboxStatus, 200);
      assert.match(web.inboxTitle ?? '', /Inbox/);
      assert.equal(web.ok, true);
      const refused = await roundcubeLogin({ url: `http://${NEW}/`, user: MAILBOX, pass: 'not-the-password' });
      assert.equal(refused.ok, false);
      assert.equal(refused.loginStatus, 401);
    });

    it('refuses a mailu.env without DOMAIN and a missing DKIM key, naming them', async () => {
      const [noDomain] = await ssh(NEW, pin(), provisionKey, [{ cmd: 'cp /mailu/mailu.env /root/env.bak && sed -i /^DOMAIN=/d /mailu/mailu.env && /opt/mailu-local/apply; rc=$?; mv /root/env.bak /mailu/mailu.env; exit $rc' }]);
      assert.equal(noDomain!.code, 2);
      assert.match(noDomain!.stderr, /mailu\.env: DOMAIN is not set/);
      const [noKey] = await ssh(NEW, pin(), provisionKey, [{ cmd: `mv /mailu/dkim/${MAIL_DOMAIN}.dkim.key /root/k && /opt/mailu-local/apply render; rc=$?; mv /root/k /mailu/dkim/${MAIL_DOMAIN}.dkim.key; exit $rc` }]);
      assert.equal(noKey!.code, 2);
      assert.match(noKey!.stderr, /\/mailu\/dkim\/vaultdr\.test\.dkim\.key is missing/);
    });
  });
});
