// The failover drill's report in Markdown (the JSON is the workflow result itself), stored beside
// it in S3 by publishDrillReport: what an auditor or the next on-call reads.
import type { FailoverDrillResult } from '../../common/ha';

const s = (ms: number) => (ms / 1000).toFixed(2);

export function renderDrillMarkdown(r: FailoverDrillResult, reason?: string): string {
  return `# Failover drill ${r.drillId}

${reason ? `Reason: ${reason}\n\n` : ''}Started ${r.startedAt}, finished ${r.finishedAt}. Runbook: docs/runbooks/ha-failover.md.
Gap = time from the fault to the first acknowledged write through HAProxy. Every acknowledged write
was read back after each round; lost acknowledged writes: **${r.lostWrites}**.

| target | fault | rounds | p50 s | p95 s | max s | lost writes |
|---|---|---:|---:|---:|---:|---:|
${r.stats.map((g) => `| ${g.target} | ${g.fault} | ${g.rounds} | ${s(g.p50Ms)} | ${s(g.p95Ms)} | ${s(g.maxMs)} | ${g.lostWrites} |`).join('\n')}

## Rounds

| # | target | fault | node | injected at | gap s | acked | failed writes | heal s |
|---:|---|---|---|---|---:|---:|---:|---:|
${r.rounds.map((x) => `| ${x.round} | ${x.target} | ${x.fault} | ${x.node} | ${x.injectedAt} | ${s(x.gapMs)} | ${x.writesAcked} | ${x.writesFailed} | ${s(x.healMs)} |`).join('\n')}
`;
}
