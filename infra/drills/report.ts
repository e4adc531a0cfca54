// The drDrill report (docs/runbooks/dr-drills.md "Reading a report"): Markdown for the repository
// and the e-mail's text part, HTML with an SVG timeline for the e-mail and the bucket. Pure string
// rendering; every value is escaped (titles and reasons come from operators).
import type { DrDrillReport, TimelineEvent } from '../../common/drillRun';

const sec = (ms?: number) => (ms === undefined ? 'not measured' : `${(ms / 1000).toFixed(2)} s`);
const fmtTarget = (s: number) => (s % 3600 === 0 && s >= 3600 ? `${s / 3600} h` : s % 60 === 0 && s >= 60 ? `${s / 60} min` : `${s} s`);
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'within target' : '**above target**');

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The measured numbers against the scenario's targets. */
export function measuredRows(r: DrDrillReport): { what: string; measured: string; target: string; verdict: string }[] {
  if (r.credential) return credentialRows(r, r.credential);
  const rpoOk = r.lostWrites === undefined ? undefined : r.lostWrites === 0 || r.targets.rpoSeconds > 0;
  // cluster-loss recovers by a restore: RTO ends when the restored secrets are verified, RPO is the backup's age at the fault.
  const restored = r.scenario === 'cluster-loss';
  return [
    { what: r.labels?.rto ?? (restored ? 'RTO (fault → restored secrets verified)' : 'RTO (fault → first acknowledged write)'), measured: sec(r.rtoMs), target: fmtTarget(r.targets.rtoSeconds), verdict: verdict(r.rtoMs === undefined ? undefined : r.rtoMs <= r.targets.rtoSeconds * 1000) },
    restored
      ? {
          what: "RPO (fault − the restored backup's snapshot time: writes in that window are lost)",
          measured: r.rpoMs === undefined ? 'not measured' : `${sec(r.rpoMs)}${r.restore ? ` (snapshot ${r.restore.snapshotCreatedAt})` : ''}`,
          target: fmtTarget(r.targets.rpoSeconds),
          verdict: verdict(r.rpoMs === undefined ? undefined : r.rpoMs <= r.targets.rpoSeconds * 1000),
        }
      : {
          what: r.labels?.rpo ?? 'RPO (acknowledged writes lost)',
          measured: r.lostWrites === undefined ? 'not measured' : `${r.lostWrites} of ${r.writesAcked ?? '?'} acknowledged (${r.lostWrites === 0 ? '0 s of data' : 'data lost'})`,
          target: fmtTarget(r.targets.rpoSeconds),
          verdict: verdict(rpoOk),
        },
    detectRow(r),
    { what: r.labels?.revert ?? (restored ? 'revert (drill cluster rebuilt, fully healthy)' : 'revert (node back, cluster fully healthy)'), measured: sec(r.revertMs), target: '-', verdict: '-' },
  ];
}

const detectRow = (r: DrDrillReport) => ({
  what: `time to detect (${r.targets.alert} on ${r.targets.channel})`,
  measured: r.alert?.observed ? sec(r.detectMs) : r.alert ? 'not seen' : 'not measured',
  target: fmtTarget(r.targets.detectSeconds),
  verdict: r.alert?.observed ? verdict((r.detectMs ?? Infinity) <= r.targets.detectSeconds * 1000) : r.alert ? '**not detected**' : 'not measured',
});
const yesNo = (ok: boolean | undefined, yes: string, no: string) => (ok === undefined ? 'not checked' : ok ? yes : `**${no}**`);

/** credential-compromise: declared → rotation verified against the RTO, the rotation, the drill's own probes, the notices. */
function credentialRows(r: DrDrillReport, c: NonNullable<DrDrillReport['credential']>): { what: string; measured: string; target: string; verdict: string }[] {
  return [
    { what: 'RTO (declared → rotation verified by the incident)', measured: sec(r.rtoMs), target: fmtTarget(r.targets.rtoSeconds), verdict: verdict(r.rtoMs === undefined ? undefined : r.rtoMs <= r.targets.rtoSeconds * 1000) },
    { what: 'RPO (a rotation loses no data)', measured: 'not applicable', target: fmtTarget(r.targets.rpoSeconds), verdict: '-' },
    detectRow(r),
    { what: `rotation of ${c.credentialClass} (${c.scope}) (rotateCredential)`, measured: sec(c.rotationMs), target: '-', verdict: c.rotation ? yesNo(c.rotation.rotated && c.rotation.newVerified && c.rotation.oldRefused, 'new verified, old refused', 'incomplete') : '**no rotation**' },
    { what: `drill probe: new secret-id (KV version ${c.versionAfter ?? '?'}) logs in`, measured: yesNo(c.newWorks, 'works', 'refused'), target: 'works', verdict: yesNo(c.newWorks, 'held', 'failed') },
    { what: `drill probe: leaked secret-id (KV version ${c.versionBefore}) refused`, measured: yesNo(c.oldRefused, 'refused', 'still accepted'), target: 'refused', verdict: yesNo(c.oldRefused, 'held', 'failed') },
    { what: 'tenant notices (training)', measured: c.tenants === undefined ? 'not checked' : `${c.noticesSent ?? 0} of ${c.tenants} sent${c.noticesTraining ? ', all marked TRAINING' : ''}`, target: 'one per tenant', verdict: c.tenants === undefined ? 'not checked' : yesNo(c.tenants > 0 && c.noticesSent === c.tenants && c.noticesTraining, 'held', 'failed') },
    { what: 'revert (training incident over)', measured: sec(r.revertMs), target: '-', verdict: '-' },
  ];
}

/** credential-compromise: what the incident did, in words (never a value). */
function credentialLines(c: NonNullable<DrDrillReport['credential']>): string[] {
  return [
    `- **Credential**: ${c.credentialClass} of ${c.scope} at \`${c.kvPath}\` (version ${c.versionBefore} declared leaked${c.versionAfter ? `, version ${c.versionAfter} after the rotation` : ''})`,
    `- **Training incident**: ${c.incidentWorkflowId}${c.incidentId ? ` (${c.incidentId})` : ''}; ${c.closed ?? 'not closed'}`,
    ...(c.responderActions?.length ? [`- **Responder actions sent by the drill**: ${c.responderActions.join(', ')}`] : []),
    ...(c.rotation ? [`- **rotateCredential**: ${c.rotation.detail}`] : []),
    ...(c.probeDetail ? [`- **Drill probe**: ${c.probeDetail}`] : []),
  ];
}

/** The restore that recovered a cluster-loss drill, as lines (no secret: ids, times, people). */
export function recoveryLines(r: DrDrillReport): string[] {
  const x = r.restore;
  if (!x) return [];
  return [
    `Backup ${x.backupId} (snapshot taken ${x.snapshotCreatedAt}) restored by ${x.workflowId} through the production path: requested by ${x.requestedBy}, approved by ${x.approvedBy ?? '(not recorded)'}; verified at ${x.verifiedAt ?? '-'}: canary ${x.canaryMatches ? 'read back' : '**did not match**'}${x.kvMatches === undefined ? '' : `, KV inventory ${x.kvMatches ? 'matches the manifest' : '**differs from the manifest**'}`}.`,
    ...(r.backup ? [`At the steady-state check the newest verified backup was ${r.backup.backupId}, ${(r.backup.ageSeconds / 3600).toFixed(2)} h old.`] : []),
  ];
}

/** How long each step ran (the facilitator's waits excluded). */
export function stepRows(r: DrDrillReport): { step: string; seconds: string }[] {
  return (r.stepDurations ?? []).map((d) => ({ step: d.step, seconds: (d.ms / 1000).toFixed(2) }));
}

/** The timeline as an SVG: one row per event, a dot at its offset from the drill's start on a shared time axis. */
export function renderTimelineSvg(r: DrDrillReport): string {
  const events = r.timeline;
  const t0 = Date.parse(r.startedAt);
  const t1 = Math.max(Date.parse(r.finishedAt), ...events.map((e) => Date.parse(e.at)), t0 + 1000);
  const span = t1 - t0;
  const left = 330;
  const width = 560;
  const row = 22;
  const top = 30;
  const height = top + events.length * row + 40;
  const x = (at: string) => left + ((Date.parse(at) - t0) / span) * width;
  const colour: Record<TimelineEvent['kind'], string> = { step: '#555', fault: '#c0392b', recovered: '#27ae60', alert: '#e67e22', revert: '#2980b9', finding: '#8e44ad', abort: '#c0392b', confirm: '#7f8c8d' };
  const ticks = 5;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 40}" height="${height}" viewBox="0 0 ${left + width + 40} ${height}" font-family="sans-serif" font-size="12" role="img" aria-label="drill timeline">`,
    `<title>Drill ${esc(r.drillId)} timeline</title>`,
    `<text x="10" y="18" font-weight="bold">Timeline (seconds since the drill started)</text>`,
  ];
  // The fault window, shaded from injection to the revert.
  const fault = events.find((e) => e.kind === 'fault');
  const revert = [...events].reverse().find((e) => e.kind === 'revert');
  if (fault) {
    const x0 = x(fault.at);
    const x1 = revert ? x(revert.at) : left + width;
    parts.push(`<rect x="${x0.toFixed(1)}" y="${top - 6}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${events.length * row}" fill="#fdecea"/>`);
  }
  for (let i = 0; i <= ticks; i++) {
    const tx = left + (i / ticks) * width;
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 6}" x2="${tx.toFixed(1)}" y2="${top + events.length * row}" stroke="#ddd"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${top + events.length * row + 16}" text-anchor="middle">${((span / 1000) * (i / ticks)).toFixed(0)}</text>`);
  }
  events.forEach((e, i) => {
    const y = top + i * row + 8;
    const offset = ((Date.parse(e.at) - t0) / 1000).toFixed(1);
    parts.push(`<text x="10" y="${y + 4}">${esc(`+${offset}s ${e.what}`.slice(0, 52))}</text>`);
    parts.push(`<circle cx="${x(e.at).toFixed(1)}" cy="${y}" r="5" fill="${colour[e.kind]}"><title>${esc(`${e.at} ${e.what}`)}</title></circle>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function renderDrillReportMarkdown(r: DrDrillReport, opts: { svgFile?: string } = {}): string {
  const rows = measuredRows(r);
  const lines = [
    `# DR drill ${r.drillId}: ${r.scenario}`,
    '',
    `- **Outcome**: ${r.outcome}${r.error ? ` (${r.error})` : ''}`,
    `- **Mode**: ${r.mode}${r.facilitator ? `, facilitator ${r.facilitator}` : ''}`,
    ...(r.reason ? [`- **Reason**: ${r.reason}`] : []),
    `- **Started** ${r.startedAt}, **finished** ${r.finishedAt}`,
    ...(r.fault ? [`- **Fault**: ${r.fault.kind} of ${r.fault.node} at ${r.fault.injectedAt}`] : []),
    `- **Runbooks exercised**: ${r.runbooks.join(', ')}`,
    '',
    '## Measured against target',
    '',
    '| what | measured | target | verdict |',
    '|---|---|---|---|',
    ...rows.map((x) => `| ${x.what} | ${x.measured} | ${x.target} | ${x.verdict} |`),
    '',
    ...(r.credential ? ['## Credential and incident', '', ...credentialLines(r.credential), ''] : []),
    ...(r.restore ? ['## Recovery', '', ...recoveryLines(r), ''] : []),
    ...(r.stepDurations?.length ? ['## Step durations', '', '| step | seconds |', '|---|---:|', ...stepRows(r).map((x) => `| ${x.step} | ${x.seconds} |`), ''] : []),
    '## What alerted, and when',
    '',
    ...(r.alert
      ? r.alert.observed
        ? [
            `\`${r.alert.alertname}\` started firing at ${r.alert.startsAt} (${sec(r.detectMs)} after the fault), seen by the drill at ${r.alert.seenAt} (${r.alert.source}); receivers: ${r.alert.receivers.join(', ') || '(none)'}.`,
            ...(r.alert.labels ? ['', `Labels: ${Object.entries(r.alert.labels).map(([k, v]) => `${k}=${v}`).join(', ')}.`] : []),
          ]
        : [`**No \`${r.alert.alertname}\` alert** was seen at ${r.alert.source} within the detection window.`]
      : ['Detection was not measured (the drill ended before that step).']),
    ...(r.alert?.others.length ? ['', `Other alerts firing during the drill: ${r.alert.others.join(', ')}.`] : []),
    '',
    ...(r.phases?.length ? ['## Recovery phases', '', '| phase | took |', '|---|---:|', ...r.phases.map((p) => `| ${p.what.replace(/\|/g, '\\|')} | ${sec(p.ms)} |`), ''] : []),
    ...(r.checks?.length ? ['## Checks', '', '| check | result | detail |', '|---|---|---|', ...r.checks.map((c) => `| ${c.what.replace(/\|/g, '\\|')} | ${c.ok ? 'pass' : '**FAIL**'} | ${c.detail.replace(/\|/g, '\\|')} |`), ''] : []),
    '## Timeline',
    '',
    ...(opts.svgFile ? [`![timeline](${opts.svgFile})`, ''] : []),
    '| time (UTC) | +s | event |',
    '|---|---:|---|',
    ...r.timeline.map((e) => `| ${e.at} | ${((Date.parse(e.at) - Date.parse(r.startedAt)) / 1000).toFixed(1)} | ${e.kind}: ${e.what.replace(/\|/g, '\\|')} |`),
    '',
    '## Findings',
    '',
    ...(r.findings.length
      ? ['| severity | finding | runbook section | tracked by |', '|---|---|---|---|', ...r.findings.map((f) => `| ${f.severity} | ${f.title.replace(/\|/g, '\\|')} (${f.evidence.replace(/\|/g, '\\|')}) | ${f.runbookSection} | ${f.workflowId ?? '-'} |`)]
      : ['None: every check held.']),
    '',
    '## Resolved findings re-tested',
    '',
    ...(r.retested.length ? r.retested.map((f) => `- ${f.findingId}: ${f.title}: ${f.passed ? 'passed (did not recur)' : '**recurred**'}`) : ['None were due (no resolved finding of this scenario awaited a re-test).']),
    '',
  ];
  return lines.join('\n');
}

export function renderDrillReportHtml(r: DrDrillReport): string {
  const rows = measuredRows(r);
  const bold = (s: string) => esc(s).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DR drill ${esc(r.drillId)}: ${esc(r.scenario)}</title>
<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head>
<body>
<h1>DR drill ${esc(r.drillId)}: ${esc(r.scenario)}</h1>
<p><strong>Outcome</strong>: ${esc(r.outcome)}${r.error ? ` (${esc(r.error)})` : ''}. <strong>Mode</strong>: ${esc(r.mode)}${r.facilitator ? `, facilitator ${esc(r.facilitator)}` : ''}.
${r.reason ? `<strong>Reason</strong>: ${esc(r.reason)}.` : ''} Started ${esc(r.startedAt)}, finished ${esc(r.finishedAt)}.
${r.fault ? `<br><strong>Fault</strong>: ${esc(r.fault.kind)} of ${esc(r.fault.node)} at ${esc(r.fault.injectedAt)}.` : ''}</p>
<h2>Measured against target</h2>
<table><tr><th>what</th><th>measured</th><th>target</th><th>verdict</th></tr>
${rows.map((x) => `<tr><td>${esc(x.what)}</td><td>${esc(x.measured)}</td><td>${esc(x.target)}</td><td>${bold(x.verdict)}</td></tr>`).join('\n')}
</table>
${r.credential ? `<h2>Credential and incident</h2>\n<ul>${credentialLines(r.credential).map((l) => `<li>${bold(l.replace(/^- /, '').replace(/`/g, ''))}</li>`).join('\n')}</ul>\n` : ''}${r.restore ? `<h2>Recovery</h2>\n${recoveryLines(r).map((l) => `<p>${bold(l)}</p>`).join('\n')}` : ''}
${r.stepDurations?.length ? `<h2>Step durations</h2>\n<table><tr><th>step</th><th>seconds</th></tr>\n${stepRows(r).map((x) => `<tr><td>${esc(x.step)}</td><td>${esc(x.seconds)}</td></tr>`).join('\n')}\n</table>` : ''}
<h2>What alerted, and when</h2>
<p>${
    r.alert
      ? r.alert.observed
        ? `<code>${esc(r.alert.alertname)}</code> started firing at ${esc(r.alert.startsAt ?? '?')} (${esc(sec(r.detectMs))} after the fault); receivers: ${esc(r.alert.receivers.join(', ') || '(none)')}.`
        : `<strong>No <code>${esc(r.alert.alertname)}</code> alert</strong> was seen (${esc(r.alert.source)}) within the detection window.`
      : 'Detection was not measured.'
  }${r.alert?.others.length ? ` Other alerts firing: ${esc(r.alert.others.join(', '))}.` : ''}</p>
${r.phases?.length ? `<h2>Recovery phases</h2>\n<table><tr><th>phase</th><th>took</th></tr>\n${r.phases.map((p) => `<tr><td>${esc(p.what)}</td><td>${esc(sec(p.ms))}</td></tr>`).join('\n')}\n</table>` : ''}
${r.checks?.length ? `<h2>Checks</h2>\n<table><tr><th>check</th><th>result</th><th>detail</th></tr>\n${r.checks.map((c) => `<tr><td>${esc(c.what)}</td><td>${c.ok ? 'pass' : '<strong>FAIL</strong>'}</td><td>${esc(c.detail)}</td></tr>`).join('\n')}\n</table>` : ''}
<h2>Timeline</h2>
${renderTimelineSvg(r)}
<h2>Findings</h2>
${r.findings.length ? `<ul>${r.findings.map((f) => `<li><strong>${esc(f.severity)}</strong>: ${esc(f.title)} (${esc(f.evidence)}); runbook ${esc(f.runbookSection)}; tracked by ${esc(f.workflowId ?? '-')}</li>`).join('\n')}</ul>` : '<p>None: every check held.</p>'}
<h2>Resolved findings re-tested</h2>
${r.retested.length ? `<ul>${r.retested.map((f) => `<li>${esc(f.findingId)}: ${esc(f.title)}: ${f.passed ? 'passed' : '<strong>recurred</strong>'}</li>`).join('\n')}</ul>` : '<p>None were due.</p>'}
<p>Runbooks exercised: ${r.runbooks.map(esc).join(', ')}.</p>
</body></html>
`;
}
