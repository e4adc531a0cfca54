// Results of `npm run bench`: the JSON shape, and its renderings as a Markdown table and an SVG
// chart (grouped bars of MB/s per workload, ours against the baselines).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PopulateReport } from './benchVault';

export type MethodId = 'baseline-a' | 'baseline-b' | 'ours-pipeline' | 'ours-workflow' | 'ours-restore-verify' | 'plain-download';

export const METHOD_LABELS: Record<MethodId, string> = {
  'baseline-a': '(a) snapshot save + plain upload',
  'baseline-b': '(b) snapshot save + age + upload',
  'ours-pipeline': 'ours: pipeline stage (encrypt + upload + verify)',
  'ours-workflow': 'ours: backupVault workflow end to end',
  'ours-restore-verify': 'ours: restore read path + verify (download, decrypt, check)',
  'plain-download': 'plain download of the backup object',
};

export interface Row {
  workload: string;
  method: MethodId;
  seconds: number;
  /** Snapshot (plaintext) megabytes (10^6 bytes) per second of wall time. */
  mbPerSecond: number;
  peakRssMiB: number;
  /** Which process the peak RSS belongs to. */
  rssOf: string;
  /** RSS of that process before any data moved (node children only). */
  startRssMiB?: number;
  /** Wall time of this row divided by baseline (a)'s for the same workload. */
  ratioToA?: number;
  parts: Record<string, number>;
  /** Set when the run failed (the workflow row); its time is until the failure. */
  error?: string;
}

export interface Workload {
  name: string;
  kind: 'openbao' | 'synthetic';
  secrets?: number;
  snapshotBytes: number;
  objectBytes?: number;
  population?: PopulateReport;
}

export interface Target {
  target: string;
  workload: string;
  measured: string;
  met: boolean;
}

export interface BenchResults {
  date: string;
  machine: { cpuModel: string; cpus: number; totalMemoryGiB: number; node: string; kernel: string; os: string };
  options: { sizes: number[]; streamGiB: number; quick: boolean; concurrency: number };
  config: { chunkSize: number; partSize: number; uploadQueueSize: number; s3: string; openbao: string };
  cipherCeiling: { tool: string; blockSize: number; mbPerSecond: number; byBlockSize: Record<string, number> };
  workloads: Workload[];
  rows: Row[];
  targets: Target[];
  notes: string[];
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# vault-dr benchmark — ${r.date}`, '');
  out.push(`Machine: ${m.cpuModel} × ${m.cpus} CPUs, ${f1(m.totalMemoryGiB)} GiB RAM, ${m.os} ${m.kernel}, Node ${m.node}.`);
  out.push(`Pipeline settings: chunk ${r.config.chunkSize / 1024} KiB, part ${r.config.partSize / 1024 / 1024} MiB × ${r.config.uploadQueueSize} in flight; S3 ${r.config.s3}; OpenBao ${r.config.openbao}.`);
  out.push(`Cipher ceiling (c): \`${r.cipherCeiling.tool}\` at ${r.cipherCeiling.blockSize}-byte blocks: **${f1(r.cipherCeiling.mbPerSecond)} MB/s** (one core).`, '');
  out.push('## Workloads', '', '| workload | secrets | population | snapshot | encrypted object |', '|---|---:|---|---:|---:|');
  for (const w of r.workloads) {
    const pop = w.population ? `${w.population.written} writes in ${f1(w.population.seconds)} s (${Math.round(w.population.writesPerSecond)}/s, ${w.population.concurrency} in flight)` : '—';
    out.push(`| ${w.name} | ${w.secrets ?? '—'} | ${pop} | ${mb(w.snapshotBytes)} | ${w.objectBytes ? mb(w.objectBytes) : '—'} |`);
  }
  out.push('', '## Results', '', 'MB/s is snapshot bytes (10^6) per second of wall time; ratio is wall time ÷ baseline (a) of the same workload.', '');
  out.push('| workload | method | wall s | MB/s | ratio to (a) | peak RSS MiB (process) | breakdown s |', '|---|---|---:|---:|---:|---|---|');
  for (const row of r.rows) {
    const parts = Object.entries(row.parts)
      .map(([k, v]) => `${k} ${f2(v)}`)
      .join(', ');
    const rss = `${f1(row.peakRssMiB)}${row.startRssMiB !== undefined ? ` (from ${f1(row.startRssMiB)})` : ''} ${row.rssOf}`;
    out.push(`| ${row.workload} | ${METHOD_LABELS[row.method]}${row.error ? ` **FAILED: ${row.error}**` : ''} | ${f2(row.seconds)} | ${f1(row.mbPerSecond)} | ${row.ratioToA !== undefined ? f2(row.ratioToA) : '—'} | ${rss} | ${parts} |`);
  }
  out.push('', '## Targets (reported, not asserted)', '', '| target | workload | measured | met |', '|---|---|---|---|');
  for (const t of r.targets) out.push(`| ${t.target} | ${t.workload} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Grouped bars: one group per workload, one bar per method, MB/s on a linear axis. */
export function renderSvg(r: BenchResults): string {
  const methods: MethodId[] = ['baseline-a', 'baseline-b', 'ours-pipeline', 'ours-workflow', 'ours-restore-verify'];
  const colors: Record<string, string> = { 'baseline-a': '#9e9e9e', 'baseline-b': '#616161', 'ours-pipeline': '#1e88e5', 'ours-workflow': '#0d47a1', 'ours-restore-verify': '#43a047' };
  const groups = r.workloads.map((w) => ({ w, rows: methods.map((m) => r.rows.find((x) => x.workload === w.name && x.method === m)) }));
  const max = Math.max(1, ...r.rows.filter((x) => methods.includes(x.method)).map((x) => x.mbPerSecond));
  const step = max > 500 ? 100 : max > 200 ? 50 : max > 50 ? 10 : 5;
  const top = Math.ceil(max / step) * step;
  const bar = 28;
  const gap = 36;
  const left = 60;
  const plotH = 300;
  const plotTop = 60;
  const groupW = methods.length * bar + gap;
  const width = Math.max(720, left + groups.length * groupW + 40);
  const height = plotTop + plotH + 150;
  const y = (v: number) => plotTop + plotH - (v / top) * plotH;
  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  s.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">vault-dr backup throughput (MB/s of snapshot, higher is better)</text>`);
  s.push(`<text x="${left}" y="44" fill="#555">${esc(`${r.date.slice(0, 10)} · ${r.machine.cpuModel} × ${r.machine.cpus} · Node ${r.machine.node} · cipher ceiling (openssl AES-256-GCM) ${f1(r.cipherCeiling.mbPerSecond)} MB/s`)}</text>`);
  for (let v = 0; v <= top; v += step) {
    s.push(`<line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#e0e0e0"/>`);
    s.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v}</text>`);
  }
  groups.forEach(({ w, rows }, gi) => {
    const x0 = left + 20 + gi * groupW;
    rows.forEach((row, mi) => {
      if (!row) return;
      const x = x0 + mi * bar;
      s.push(`<rect x="${x}" y="${y(row.mbPerSecond)}" width="${bar - 4}" height="${plotTop + plotH - y(row.mbPerSecond)}" fill="${colors[row.method]}"><title>${esc(`${METHOD_LABELS[row.method]}: ${f1(row.mbPerSecond)} MB/s, ${f2(row.seconds)} s`)}</title></rect>`);
      s.push(`<text x="${x + (bar - 4) / 2}" y="${y(row.mbPerSecond) - 4}" text-anchor="middle" font-size="10">${Math.round(row.mbPerSecond)}</text>`);
    });
    s.push(`<text x="${x0 + (methods.length * bar) / 2}" y="${plotTop + plotH + 18}" text-anchor="middle">${esc(w.name)}</text>`);
    s.push(`<text x="${x0 + (methods.length * bar) / 2}" y="${plotTop + plotH + 32}" text-anchor="middle" fill="#555" font-size="10">${esc(mb(w.snapshotBytes))}</text>`);
  });
  methods.forEach((m, i) => {
    const ly = plotTop + plotH + 56 + i * 17;
    s.push(`<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="${colors[m]}"/>`);
    s.push(`<text x="${left + 18}" y="${ly}">${esc(METHOD_LABELS[m])}</text>`);
  });
  s.push('</svg>');
  return s.join('\n') + '\n';
}

export function writeResults(dir: string, name: string, r: BenchResults): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, `${name}.json`), path.join(dir, `${name}.md`), path.join(dir, `${name}.svg`)];
  fs.writeFileSync(files[0]!, JSON.stringify(r, null, 2) + '\n');
  fs.writeFileSync(files[1]!, renderMarkdown(r));
  fs.writeFileSync(files[2]!, renderSvg(r));
  return files;
}
