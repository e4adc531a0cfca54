// CLI for emergency rotation and the unseal-key ceremonies:
//   vaultdr rotate <class> [--scope S]           start rotateCredential (waits; exit 1 unless rotated)
//   vaultdr rotate confirm <wf> --who N          a person confirms a third-party/hook rotation (update)
//   vaultdr rotate relay-stored <wf> --who N --path P   the relay provider's new login is stored at P (update)
//   vaultdr seal-drill [--shares N --threshold T | --target ha] start sealUnsealDrill (prints the id; custodians submit shares)
//   vaultdr keys rotate [--threshold T]          start rotateUnsealKeys (prints the id)
//   vaultdr keys rotate-submit SHARE --token-file F      a custodian's CURRENT share, straight to OpenBao
//   vaultdr keys rotate-verify SHARE.asc --pgp-key K --token-file F   a custodian's NEW share, decrypted here, straight to OpenBao
// Shares never go through Temporal; the OpenBao calls use the custodian's own token.
import type { Command } from 'commander';
import { CREDENTIAL_CLASSES, type RotateResult } from '../common/rotation';
import { readSecretFile } from '../infra/config';
import { stagingApi } from '../infra/vault/stagingVault';
import { decryptShare, readText } from '../infra/unsealKeys';
import { readAnyShareFile } from '../infra/crypto/escrow';
import { confirmRotated, relayPasswordStored } from '../workflows/emergency/rotateCredential';
import type { CliContext } from './backupCommands';
import { connectClient } from './connect';
import { startWorkflow } from './workflows';

/** A custodian's share as OpenBao takes it: a bare key file, or a PGP-encrypted one decrypted with --pgp-key. */
export async function custodianShare(file: string, opts: { pgpKey?: string; passphraseFile?: string }): Promise<string> {
  if (opts.pgpKey) {
    const pass = opts.passphraseFile ? readSecretFile(opts.passphraseFile, '--passphrase-file') : undefined;
    return decryptShare(readText(file, 'share file'), readText(opts.pgpKey, '--pgp-key file'), pass);
  }
  const s = readAnyShareFile(file);
  if (!('key' in s)) throw new Error(`${file} is a vault-dr escrow share, not an OpenBao unseal key share`);
  return s.key;
}

export function registerEmergencyCommands(program: Command, ctx: CliContext): void {
  const rotate = program
    .command('rotate')
    .argument('[class]', `credential class: ${CREDENTIAL_CLASSES.join(' | ')} (default: rotation.defaultClass)`)
    .option('--scope <scope>', 'role name, lease prefix, mailbox, key id... (default: rotation.defaultScopes)')
    .option('--incident <id>', 'the incident this rotation belongs to')
    .option('--training', 'mark everything TRAINING', false)
    .option('--no-wait', 'print the workflow id and return')
    .description('emergency rotation of one credential class: new credential verified, old revoked and proven refused (docs/runbooks/credential-rotation.md)')
    .action(async (cls: string | undefined, opts: { scope?: string; incident?: string; training: boolean; wait: boolean }, cmd: Command) => {
      if (cls && !(CREDENTIAL_CLASSES as readonly string[]).includes(cls)) ctx.fail(`unknown class "${cls}": expected one of ${CREDENTIAL_CLASSES.join(', ')}`, 2);
      const input = { ...(cls ? { credentialClass: cls as (typeof CREDENTIAL_CLASSES)[number] } : {}), ...(opts.scope ? { scope: opts.scope } : {}), ...(opts.incident ? { incidentId: opts.incident } : {}), training: opts.training };
      const r = (await startWorkflow(ctx.cfgOf(cmd), 'rotateCredential', input, { wait: opts.wait }).catch((err: Error) => ctx.fail(err.message))) as RotateResult | { workflowId: string };
      if (!('rotated' in r)) return ctx.out(ctx.json(cmd), r, () => `started ${r.workflowId}`);
      ctx.out(ctx.json(cmd), r, () => `${r.credentialClass}: ${r.rotated ? 'ROTATED' : 'NOT ROTATED'} (new verified: ${r.newVerified}, old refused: ${r.oldRefused}, old left in place: ${r.oldLeftInPlace})\n  ${r.detail}`);
      if (!r.rotated) process.exitCode = 1;
    });
  rotate
    .command('confirm')
    .argument('<workflowId>', 'the rotation waiting for a person')
    .requiredOption('--who <name>', 'who rotated or applied it')
    .option('--old-revoked', 'the old credential was revoked at the issuer', false)
    .option('--note <text>', 'anything the record should say')
    .description('confirm that you stored the new value in Vault KV and applied/rotated it at the issuer')
    .action(async (workflowId: string, opts: { who: string; oldRevoked: boolean; note?: string }, cmd: Command) => {
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        await client.workflow
          .getHandle(workflowId)
          .executeUpdate(confirmRotated, { args: [{ who: opts.who, newValueStored: true, oldRevoked: opts.oldRevoked, ...(opts.note ? { note: opts.note } : {}) }] })
          .catch((err: Error) => ctx.fail(`not accepted: ${(err.cause as Error | undefined)?.message ?? err.message}`));
        ctx.out(ctx.json(cmd), { workflowId, accepted: true }, () => `${workflowId}: confirmed — the rotation verifies the new credential now`);
      } finally {
        await client.connection.close();
      }
    });

  rotate
    .command('relay-stored')
    .argument('<workflowId>', 'the smtp-relay rotation waiting for the new relay login')
    .requiredOption('--who <name>', 'who stored it')
    .requiredOption('--path <kvPath>', 'the KV v2 path holding username/password (progress.waitingFor names one)')
    .option('--kv-version <n>', 'the KV version holding it (default: the latest)')
    .option('--old-revoked', 'the old login was revoked at the relay provider', false)
    .option('--note <text>', 'anything the record should say')
    .description('say where in Vault you stored the relay login the provider issued (the path only, never the password); vault-dr writes it to the mail host and proves it')
    .action(async (workflowId: string, opts: { who: string; path: string; kvVersion?: string; oldRevoked: boolean; note?: string }, cmd: Command) => {
      const version = opts.kvVersion === undefined ? undefined : Number(opts.kvVersion);
      if (version !== undefined && !(Number.isInteger(version) && version >= 1)) ctx.fail('--kv-version: expected a whole number ≥ 1', 2);
      const client = await connectClient(ctx.cfgOf(cmd));
      try {
        await client.workflow
          .getHandle(workflowId)
          .executeUpdate(relayPasswordStored, { args: [{ who: opts.who, kvPath: opts.path, oldRevoked: opts.oldRevoked, ...(version ? { version } : {}), ...(opts.note ? { note: opts.note } : {}) }] })
          .catch((err: Error) => ctx.fail(`not accepted: ${(err.cause as Error | undefined)?.message ?? err.message}`));
        ctx.out(ctx.json(cmd), { workflowId, accepted: true }, () => `${workflowId}: accepted — vault-dr writes the relay login to the mail host and verifies it now`);
      } finally {
        await client.connection.close();
      }
    });

  program
    .command('seal-drill')
    .option('--shares <n>', 'custodian shares of the throwaway server', '3')
    .option('--threshold <n>', 'shares needed to unseal', '2')
    .option('--target <target>', 'throwaway (a server made for the drill) or ha (the HA cluster: standbys stopped, the active node sealed)', 'throwaway')
    .description('start a seal/unseal drill on a throwaway OpenBao or the HA cluster (custodians then run `vaultdr keys submit-share`)')
    .action(async (opts: { shares: string; threshold: string; target: string }, cmd: Command) => {
      const input = opts.target === 'throwaway' ? { shares: Number(opts.shares), threshold: Number(opts.threshold) } : { target: opts.target as 'ha' };
      const r = await startWorkflow(ctx.cfgOf(cmd), 'sealUnsealDrill', input, { wait: false }).catch((err: Error) => ctx.fail(err.message));
      ctx.out(ctx.json(cmd), r, () => `started ${(r as unknown as { workflowId: string }).workflowId}: watch \`vaultdr workflows show\` or the Web UI for the share files and the instruction`);
    });

  const keys = program.commands.find((c) => c.name() === 'keys')!;
  keys
    .command('rotate')
    .option('--threshold <n>', 'new threshold', '2')
    .option('--shares <n>', 'new share count (default: one per custodian in rotation.custodiansFile)')
    .option('--no-backup', 'skip the fresh backup after the rotation')
    .description('start the unseal-key rotation ceremony (rotateUnsealKeys; docs/runbooks/unseal-key-rotation.md)')
    .action(async (opts: { threshold: string; shares?: string; backup: boolean }, cmd: Command) => {
      const r = await startWorkflow(ctx.cfgOf(cmd), 'rotateUnsealKeys', { threshold: Number(opts.threshold), ...(opts.shares ? { shares: Number(opts.shares) } : {}), backupAfter: opts.backup }, { wait: false }).catch((err: Error) => ctx.fail(err.message));
      ctx.out(ctx.json(cmd), r, () => `started ${(r as unknown as { workflowId: string }).workflowId}: custodians now run \`vaultdr keys rotate-submit CURRENT_SHARE --token-file THEIR_TOKEN\``);
    });

  const baoCall = async (cmd: Command, o: { address?: string; tokenFile: string }, method: string, p: string, body?: unknown) => {
    const cfg = ctx.cfgOf(cmd);
    const address = o.address ?? cfg.rotation.unsealAddress ?? cfg.vault.address;
    const token = readSecretFile(o.tokenFile, '--token-file');
    const r = await stagingApi(address, method, p, token, body).catch((err: Error) => ctx.fail(`${address} unreachable: ${err.message}`));
    if (r.status >= 400) ctx.fail(`${address}: ${method} ${p}: HTTP ${r.status} ${(r.json.errors ?? []).join('; ').replace(/[A-Za-z0-9+/=]{16,}/g, '…')}`);
    return { address, json: r.json };
  };
  keys
    .command('rotate-submit')
    .argument('<shareFile>', 'your CURRENT unseal key share (a file with the bare key)')
    .requiredOption('--token-file <file>', 'your OpenBao token (policy vaultdr-custodian)')
    .option('--address <url>', 'OpenBao (default: rotation.unsealAddress or vault.address)')
    .description('submit your current share to the running unseal-key rotation, straight to OpenBao (never through Temporal)')
    .action(async (file: string, opts: { tokenFile: string; address?: string }, cmd: Command) => {
      let key: string;
      try {
        key = await custodianShare(file, {});
      } catch (err) {
        return ctx.fail((err as Error).message);
      }
      const st = (await baoCall(cmd, opts, 'GET', 'sys/rotate/root/init')).json.data ?? {};
      if (!st.started) return ctx.fail('no unseal-key rotation is in progress');
      const { address, json } = await baoCall(cmd, opts, 'POST', 'sys/rotate/root/update', { key, nonce: st.nonce });
      const d = json.data ?? {};
      // The last answer carries the new shares, PGP-encrypted: never printed; the workflow distributes them.
      const out = { address, nonce: st.nonce, complete: !!d.complete, progress: d.progress ?? d.required, required: d.required ?? st.required };
      ctx.out(ctx.json(cmd), out, () => (out.complete ? `${address}: threshold reached — the new shares are made and encrypted to the custodians' PGP keys; the workflow hands them out` : `${address}: ${out.progress} of ${out.required} current shares submitted`));
    });
  keys
    .command('rotate-verify')
    .argument('<shareFile>', 'your NEW share as handed out (PGP-encrypted .asc), or the bare key')
    .requiredOption('--token-file <file>', 'your OpenBao token (policy vaultdr-custodian)')
    .option('--pgp-key <file>', 'your PGP private key (decrypts the share on this machine)')
    .option('--passphrase-file <file>', 'its passphrase')
    .option('--address <url>', 'OpenBao (default: rotation.unsealAddress or vault.address)')
    .description('verify your new share with OpenBao (require_verification): the new shares take effect once enough custodians did')
    .action(async (file: string, opts: { tokenFile: string; pgpKey?: string; passphraseFile?: string; address?: string }, cmd: Command) => {
      let key: string;
      try {
        key = await custodianShare(file, opts);
      } catch (err) {
        return ctx.fail((err as Error).message);
      }
      const v = (await baoCall(cmd, opts, 'GET', 'sys/rotate/root/verify')).json.data ?? {};
      if (!v.started) return ctx.fail('no verification of new unseal shares is pending');
      const { address, json } = await baoCall(cmd, opts, 'POST', 'sys/rotate/root/verify', { key, nonce: v.nonce });
      const d = json.data ?? {};
      ctx.out(ctx.json(cmd), { address, complete: !!d.complete, progress: d.progress, t: v.t }, () => (d.complete ? `${address}: verification complete — the new shares are in force, the old ones no longer unseal` : `${address}: ${d.progress} of ${v.t} new shares verified`));
    });
}

