// `vaultdr incident ...`: declare a breach (breachResponse), follow it, act on it as a responder
// (each action is an update with a validator or a signal, so a wrong or premature one is refused
// with the reason), preview the tenant notices, and build the post-incident review from history.
import type { Command } from 'commander';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { BreachInput, INCIDENT_SEVERITIES, type BreachProgress } from '../common/incident';
import { describeIssues } from '../common/validate';
import { EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { acknowledge, addFinding, approveContainment, approveNotice, closeIncident, note, progress } from '../workflows/emergency/breachResponse';
import type { CliContext } from './backupCommands';
import { connectClient } from './connect';
import { renderReview, reviewFromHistory } from './incidentReview';
import { startWorkflow } from './workflows';

function renderProgress(id: string, p: BreachProgress): string {
  return [
    `${p.training ? '[TRAINING] ' : ''}incident ${p.incidentId} (${id}): ${p.severity}, ${p.scope.join(', ')}`,
    `  stage    ${p.stage} (step ${p.step})`,
    `  aware at ${p.awareAt}; notices due by ${p.noticeDeadline}`,
    `  joined   ${p.acknowledgedBy.join(', ') || 'nobody yet'}`,
    ...(p.waitingFor ? [`  waiting  ${p.waitingFor}`] : []),
    ...p.rotations.map((r) => `  rotation ${r.credentialClass}: ${r.rotated && r.newVerified && r.oldRefused ? 'done, verified' : r.detail}`),
    ...(p.notices ? p.notices.deliveries.map((d) => `  notice   ${d.tenantId} <${d.to}>: ${d.status}${d.detail ? ` (${d.detail})` : ''}`) : []),
    ...(p.error ? [`  error    ${p.error}`] : []),
    '  timeline:',
    ...p.timeline.map((t) => `    ${t.at}  ${t.who.padEnd(14)} ${t.what.padEnd(18)} ${t.detail}`),
  ].join('\n');
}

export function registerIncidentCommands(program: Command, ctx: CliContext): void {
  const incident = program.command('incident').description('breach response: declare, act as a responder, notices, review (docs/runbooks/breach-response.md)');
  const handleOf = async (cmd: Command, id: string) => {
    const client = await connectClient(ctx.cfgOf(cmd));
    return { client, handle: client.workflow.getHandle(id) };
  };
  /** Runs an update; a validator's refusal is the CLI's error, with the workflow's reason. */
  const update = async (cmd: Command, id: string, run: (h: ReturnType<Awaited<ReturnType<typeof connectClient>>['workflow']['getHandle']>) => Promise<unknown>) => {
    const { client, handle } = await handleOf(cmd, id);
    try {
      const res = await run(handle);
      ctx.out(ctx.json(cmd), res, () => `accepted: ${JSON.stringify(res)}`);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) ctx.fail(`refused: ${(err.cause as Error | undefined)?.message ?? err.message}`, 3);
      throw err;
    } finally {
      await client.connection.close();
    }
  };

  incident
    .command('declare')
    .description('start breachResponse (prints the workflow id)')
    .option('--severity <sev>', INCIDENT_SEVERITIES.join(' | '), 'sev2')
    .option('--scope <names...>', 'what is affected: vault, mail, host:NAME, postgres, alerting', ['vault'])
    .option('--summary <text>', 'what is known (never a secret value)')
    .option('--aware-at <iso>', 'when you became aware (GDPR 72 h start); default now')
    .option('--by <name>', 'who declares')
    .option('--classes <classes...>', 'credential classes to rotate (default by scope)')
    .option('--tenants <ids...>', 'tenants to notify (default all in the registry)')
    .option('--propose-seal', 'propose the emergency seal at containment (still needs approval by someone else)')
    .option('--training', 'training mode: notices to the training inbox, nothing sealed, everything marked TRAINING')
    .action(async (o: { severity: string; scope: string[]; summary?: string; awareAt?: string; by?: string; classes?: string[]; tenants?: string[]; proposeSeal?: boolean; training?: boolean }, cmd: Command) => {
      const input = {
        severity: o.severity,
        scope: o.scope,
        ...(o.summary ? { summary: o.summary } : {}),
        ...(o.awareAt ? { awareAt: o.awareAt } : {}),
        ...(o.by ? { declaredBy: o.by } : {}),
        ...(o.classes ? { credentialClasses: o.classes } : {}),
        ...(o.tenants ? { tenants: o.tenants } : {}),
        ...(o.proposeSeal ? { proposeSeal: true } : {}),
        ...(o.training ? { training: true } : {}),
      } as BreachInput;
      // The workflow's own schema, here first: a bad flag is refused before anything starts.
      const pre = BreachInput.safeParse(input);
      if (!pre.success) ctx.fail(`invalid input: ${describeIssues(pre.error.issues)}`, 2);
      const id = `incident-${new Date().toISOString().replace(/[:.]/g, '-')}${o.training ? '-training' : ''}`;
      const started = (await startWorkflow(ctx.cfgOf(cmd), 'breachResponse', input, { wait: false, workflowId: id })) as unknown as { workflowId: string };
      ctx.out(ctx.json(cmd), started, () => `declared: ${started.workflowId}\nnext: vaultdr incident ack ${started.workflowId} --who NAME`);
    });

  incident
    .command('status <workflowId>')
    .description('stage, waits, rotations, notices and the responder timeline')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, handle } = await handleOf(cmd, id);
      try {
        const p = await handle.query(progress);
        ctx.out(ctx.json(cmd), p, () => renderProgress(id, p));
      } finally {
        await client.connection.close();
      }
    });

  incident
    .command('ack <workflowId>')
    .requiredOption('--who <name>')
    .option('--role <role>', 'incident commander, scribe, ...')
    .action((id: string, o: { who: string; role?: string }, cmd: Command) => update(cmd, id, (h) => h.executeUpdate(acknowledge, { args: [{ who: o.who, ...(o.role ? { role: o.role } : {}) }] })));

  incident
    .command('approve-containment <workflowId>')
    .requiredOption('--who <name>')
    .requiredOption('--why <reason>')
    .option('--seal', 'also approve the emergency seal (only when proposed; not by the declarer)')
    .option('--refuse', 'refuse the containment plan')
    .action((id: string, o: { who: string; why: string; seal?: boolean; refuse?: boolean }, cmd: Command) =>
      update(cmd, id, (h) => h.executeUpdate(approveContainment, { args: [{ who: o.who, why: o.why, approve: !o.refuse, seal: !!o.seal }] })),
    );

  incident
    .command('approve-notice <workflowId>')
    .requiredOption('--who <name>')
    .requiredOption('--why <reason>')
    .requiredOption('--digest <hex>', 'the digest printed by `vaultdr incident notices preview`')
    .option('--refuse', 'refuse: the notices are prepared again (add findings first)')
    .action((id: string, o: { who: string; why: string; digest: string; refuse?: boolean }, cmd: Command) =>
      update(cmd, id, (h) => h.executeUpdate(approveNotice, { args: [{ who: o.who, why: o.why, approve: !o.refuse, previewDigest: o.digest }] })),
    );

  incident
    .command('close <workflowId>')
    .requiredOption('--who <name>')
    .requiredOption('--summary <text>')
    .option('--factor <text...>', 'contributing factors')
    .option('--action <what|owner|YYYY-MM-DD...>', 'action items, each "what|owner|due"')
    .action((id: string, o: { who: string; summary: string; factor?: string[]; action?: string[] }, cmd: Command) => {
      const actionItems = (o.action ?? []).map((a) => {
        const [what, owner, due] = a.split('|');
        return { what: what ?? '', owner: owner ?? '', due: due ?? '' };
      });
      return update(cmd, id, (h) => h.executeUpdate(closeIncident, { args: [{ who: o.who, summary: o.summary, contributingFactors: o.factor ?? [], actionItems }] }));
    });

  const signal = async (cmd: Command, id: string, send: (h: ReturnType<Awaited<ReturnType<typeof connectClient>>['workflow']['getHandle']>) => Promise<void>) => {
    const { client, handle } = await handleOf(cmd, id);
    try {
      await send(handle);
      ctx.out(ctx.json(cmd), { sent: true }, () => 'sent');
    } finally {
      await client.connection.close();
    }
  };
  incident
    .command('finding <workflowId> <text>')
    .requiredOption('--who <name>')
    .action((id: string, text: string, o: { who: string }, cmd: Command) => signal(cmd, id, (h) => h.signal(addFinding, { who: o.who, finding: text })));
  incident
    .command('note <workflowId> <text>')
    .requiredOption('--who <name>')
    .action((id: string, text: string, o: { who: string }, cmd: Command) => signal(cmd, id, (h) => h.signal(note, { who: o.who, text })));

  const notices = incident.command('notices').description('tenant notices of an incident');
  notices
    .command('preview <workflowId>')
    .description('print the rendered notices and the digest an approver names')
    .option('--tenant <id>', 'only this tenant')
    .action(async (id: string, o: { tenant?: string }, cmd: Command) => {
      const { client, handle } = await handleOf(cmd, id);
      try {
        const p = await handle.query(progress);
        if (!p.notices) ctx.fail(`incident ${id} has not prepared its notices yet (stage ${p.stage}, step ${p.step})`, 3);
        const n = p.notices!;
        const shown = n.previews.filter((x) => !o.tenant || x.tenantId === o.tenant);
        ctx.out(ctx.json(cmd), { ...n, previews: shown }, () =>
          [
            `template v${n.templateVersion} (sha256 ${n.templateSha256.slice(0, 16)}), ${n.previews.length} tenant(s), digest ${n.previewDigest}`,
            ...shown.flatMap((x) => ['', `=== ${x.tenantId} → ${x.to}`, `Subject: ${x.subject}`, '', x.text]),
            '',
            `approve with: vaultdr incident approve-notice ${id} --digest ${n.previewDigest} --who NAME --why REASON`,
          ].join('\n'),
        );
      } finally {
        await client.connection.close();
      }
    });

  incident
    .command('review <workflowId>')
    .description('the post-incident review (markdown) with its timeline rebuilt from the workflow history')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const client = await connectClient(cfg);
      try {
        const r = await reviewFromHistory(client, new EncryptionCodec(loadKeyring(cfg.codec.keysFile)), id);
        ctx.out(ctx.json(cmd), r, () => renderReview(r));
      } finally {
        await client.connection.close();
      }
    });
}
