// The runbooks and the README against the code, fast and without the stack: every `code:` line
// names a file that exists and functions defined in it; every step heading names an activity the
// workers really build (or a step the workflow really runs), and every activity and step a
// workflow runs has its heading; incident cards stay one page and follow one shape, one per alert;
// every relative link in docs/, README.md and deploy/ resolves, anchor included; the worker-roles
// table lists exactly the activities each role builds.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backupRoleActivities, createActivities, notifyRoleActivities, restoreRoleActivities } from '../activities';
import { buildClients } from '../infra/clients';
import { ConfigSchema } from '../infra/config';
import { PROJECT_ROOT } from './helpers/stack';

const ROOT = PROJECT_ROOT;
const RUNBOOKS = path.join(ROOT, 'docs', 'runbooks');
const CARDS = path.join(RUNBOOKS, 'cards');
/** A card is one page: what an on-call reads in one screen or one printed sheet. */
const CARD_MAX_LINES = 60;
const rel = (f: string) => path.relative(ROOT, f);

function filesUnder(dir: string, ext: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return d.name === 'node_modules' ? [] : filesUnder(p, ext);
    return d.name.endsWith(ext) ? [p] : [];
  });
}

/** Lines of a markdown file with fenced code blocks blanked (their text is not prose, links or headings). */
function proseLines(file: string): string[] {
  let fence = false;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => {
      if (/^\s*(```|~~~)/.test(l)) {
        fence = !fence;
        return '';
      }
      return fence ? '' : l;
    });
}

/** GitHub's heading anchor: lower case, punctuation dropped (code ticks too), spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map<string, Set<string>>();
/** Every anchor a markdown file offers: heading slugs (with GitHub's -1, -2 for repeats) and <a id>. */
function anchorsOf(file: string): Set<string> {
  let out = anchorCache.get(file);
  if (out) return out;
  out = new Set();
  const seen = new Map<string, number>();
  for (const l of proseLines(file)) {
    const h = /^#{1,6} (.+?)\s*#*\s*$/.exec(l);
    if (h) {
      const s = slug(h[1]!);
      const n = seen.get(s) ?? 0;
      seen.set(s, n + 1);
      out.add(n ? `${s}-${n}` : s);
    }
    for (const a of l.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(a[1]!);
  }
  anchorCache.set(file, out);
  return out;
}

interface Link {
  from: string;
  line: number;
  target: string;
}

/** Inline links and images outside code, with their line numbers. */
function linksOf(file: string): Link[] {
  const links: Link[] = [];
  proseLines(file).forEach((l, i) => {
    const prose = l.replace(/(`+)[^`]*?\1/g, (m) => (m.includes('](') ? m : ' '.repeat(m.length)));
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ from: file, line: i + 1, target: m[1]! });
  });
  return links;
}

/** Why a link does not resolve, or undefined when it does. */
function brokenLink(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // http:, https:, mailto:
  const [p, anchor] = target.split('#') as [string, string | undefined];
  const abs = p ? path.resolve(path.dirname(from), decodeURIComponent(p)) : from;
  if (abs !== ROOT && !abs.startsWith(ROOT + path.sep)) return 'points outside the repository';
  if (!fs.existsSync(abs)) return 'no such file';
  if (anchor !== undefined && abs.endsWith('.md') && !anchorsOf(abs).has(anchor)) return `no anchor #${anchor} in ${rel(abs)}`;
  return undefined;
}

/** The markdown the project ships: README, docs/, and the docs that live beside deploy configs. */
const docFiles = () => [path.join(ROOT, 'README.md'), ...filesUnder(path.join(ROOT, 'docs'), '.md'), ...filesUnder(path.join(ROOT, 'deploy'), '.md')];

// ---------------------------------------------------------------------------------------------
// code: lines and step headings

interface CodeRef {
  file: string;
  names: string[];
}
interface Step {
  doc: string;
  line: number;
  heading: string;
  /** The step's name: the heading's first code span, else the heading. */
  name: string;
  refs: CodeRef[];
}

/**
 * `code: [`path`](relative link): `fn` → `method`; [`other/path`](…): `fn`` — segments split by ";",
 * each a link to a source file and the functions that implement the step there.
 */
function parseCodeLine(doc: string, text: string, line: number, problems: string[]): CodeRef[] {
  const refs: CodeRef[] = [];
  for (const seg of text.split(/;\s+/)) {
    const m = /^\[`?([^\]`]+)`?\]\(([^)]+)\)(.*)$/.exec(seg.trim());
    if (!m) {
      problems.push(`${rel(doc)}:${line}: code: segment "${seg}" is not [\`path\`](link): \`function\``);
      continue;
    }
    const [, shown, href, rest] = m as unknown as [string, string, string, string];
    const file = path.resolve(ROOT, shown);
    if (path.resolve(path.dirname(doc), href) !== file) problems.push(`${rel(doc)}:${line}: code: link ${href} does not point at ${shown}`);
    if (!fs.existsSync(file)) {
      problems.push(`${rel(doc)}:${line}: code: ${shown} does not exist`);
      continue;
    }
    const names = [...rest.matchAll(/`([A-Za-z_$][\w$]*)(?:\(\))?`/g)].map((n) => n[1]!);
    if (names.length === 0) problems.push(`${rel(doc)}:${line}: code: ${shown} names no function`);
    const src = fs.readFileSync(file, 'utf8');
    for (const name of names) {
      if (!definedIn(src, name)) problems.push(`${rel(doc)}:${line}: code: \`${name}\` is not defined in ${shown}`);
    }
    refs.push({ file: shown, names });
  }
  return refs;
}

/** A function, class, constant or object method of that name is defined (not just used) in the source. */
function definedIn(src: string, name: string): boolean {
  const n = name.replace(/\$/g, '\\$');
  return [
    new RegExp(`\\b(?:function\\*?|class|const|let|var|interface|type|enum)\\s+${n}\\b`),
    new RegExp(`^\\s*(?:public\\s+|private\\s+|static\\s+)*(?:async\\s+)?${n}\\s*(?:<[^>]*>)?\\(`, 'm'),
    new RegExp(`^\\s*${n}\\s*:\\s*(?:async\\s*)?(?:\\(|function)`, 'm'),
  ].some((re) => re.test(src));
}

/** Every heading followed (first non-empty line) by a `code:` line. */
function stepsOf(doc: string, problems: string[]): Step[] {
  const lines = proseLines(doc);
  const out: Step[] = [];
  const attached = new Set<number>();
  lines.forEach((l, i) => {
    const h = /^#{2,6} (.+)$/.exec(l);
    if (!h) return;
    let j = i + 1;
    while (j < lines.length && (lines[j]!.trim() === '' || /^<a\s/.test(lines[j]!.trim()))) j++;
    const c = /^code: (.+)$/.exec(lines[j] ?? '');
    if (!c) return;
    attached.add(j);
    const heading = h[1]!;
    out.push({ doc, line: i + 1, heading, name: /`([^`]+)`/.exec(heading)?.[1] ?? heading.trim(), refs: parseCodeLine(doc, c[1]!, j + 1, problems) });
  });
  // A code: line belongs directly under its step's heading, not somewhere in the text.
  lines.forEach((l, i) => {
    if (/^code:/.test(l) && !attached.has(i)) problems.push(`${rel(doc)}:${i + 1}: code: line not directly under a heading`);
  });
  return out;
}

// Building activities reads no file and opens no connection; the config needs a keyring and a Vault identity path.
const buildCfg = () => ConfigSchema.parse({ codec: { keysFile: '/nonexistent/keys.json' }, vault: { tokenFile: '/nonexistent/token' } });

/** The activities each role's worker registers, from the same assembly functions the workers call. */
function roleActivities(): Record<'backup' | 'restore' | 'notify', string[]> {
  const cfg = buildCfg();
  const clients = buildClients(cfg);
  return {
    backup: Object.keys(backupRoleActivities(cfg, clients)),
    restore: Object.keys(restoreRoleActivities(cfg, clients)),
    notify: Object.keys(notifyRoleActivities(cfg, clients)),
  };
}

/** Every activity any role builds (createActivities assembles them all, for the CLI). */
function allActivities(): Set<string> {
  const cfg = buildCfg();
  return new Set([...Object.keys(createActivities(cfg, buildClients(cfg))), ...Object.values(roleActivities()).flat()]);
}

/** The step names workflows pass to the shared step helper: `step('selectBackup', …)`. */
function workflowSteps(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of filesUnder(path.join(ROOT, 'workflows'), '.ts')) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/\bstep\(\s*'([^']+)'/g)) out.set(m[1]!, rel(f));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('runbooks and README against the code', () => {
  const runbooks = filesUnder(RUNBOOKS, '.md').filter((f) => path.dirname(f) === RUNBOOKS);
  const cards = filesUnder(CARDS, '.md').filter((f) => path.basename(f) !== 'README.md');

  it('every relative link in README.md, docs/ and deploy/*.md resolves, anchor included, and none leaves the repository', () => {
    const links = docFiles().flatMap(linksOf);
    assert.ok(links.length > 150, `found only ${links.length} links: the scan is broken`);
    const problems = links.flatMap((l) => {
      const why = brokenLink(l.from, l.target);
      return why ? [`${rel(l.from)}:${l.line}: ${l.target}: ${why}`] : [];
    });
    assert.deepEqual(problems, []);
  });

  it('every repository path quoted in code spans of the docs exists (and its anchor, for a runbook)', () => {
    const problems: string[] = [];
    let paths = 0;
    const top = 'activities|workflows|infra|common|workers|client|stack|deploy|docs|test|scripts|bench|chaos|bin';
    const re = new RegExp(`\`((?:${top})/[\\w./-]+\\.(?:ts|js|md|ya?ml|json|hcl|sh|toml|png))(?:#([\\w-]+))?\``, 'g');
    for (const f of docFiles()) {
      proseLines(f).forEach((l, i) => {
        for (const m of l.matchAll(re)) {
          paths++;
          const abs = path.join(ROOT, m[1]!);
          if (!fs.existsSync(abs)) problems.push(`${rel(f)}:${i + 1}: \`${m[1]}\` does not exist`);
          else if (m[2] && abs.endsWith('.md') && !anchorsOf(abs).has(m[2])) problems.push(`${rel(f)}:${i + 1}: \`${m[1]}#${m[2]}\`: no such anchor`);
        }
      });
    }
    assert.ok(paths > 50, `found only ${paths} quoted paths: the scan is broken`);
    assert.deepEqual(problems, []);
  });

  it("every alert rule's runbook_url (deploy/) resolves to a file and an anchor", () => {
    const problems: string[] = [];
    let urls = 0;
    for (const f of filesUnder(path.join(ROOT, 'deploy'), '.yml')) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/runbook_url: (\S+)/g)) {
        urls++;
        const why = brokenLink(path.join(ROOT, 'README.md'), m[1]!);
        if (why) problems.push(`${rel(f)}: ${m[1]}: ${why}`);
      }
    }
    assert.ok(urls >= 15, `found only ${urls} runbook_url annotations`);
    assert.deepEqual(problems, []);
  });

  it('every code: line names an existing file and functions defined in it', () => {
    const problems: string[] = [];
    const steps = [...runbooks, ...cards].flatMap((d) => stepsOf(d, problems));
    assert.ok(steps.length >= 25, `found only ${steps.length} step headings with a code: line`);
    assert.deepEqual(problems, []);
  });

  it('every step heading names an activity the workers build, or a step the workflow runs, and its code: line names it', () => {
    const problems: string[] = [];
    const activities = allActivities();
    assert.ok(activities.size >= 25, `built only ${activities.size} activities`);
    const wfSteps = workflowSteps();
    for (const s of runbooks.flatMap((d) => stepsOf(d, problems))) {
      const where = `${rel(s.doc)}:${s.line} "${s.heading}"`;
      if (activities.has(s.name)) {
        if (!s.refs.some((r) => r.file.startsWith('activities/') && r.names.includes(s.name))) problems.push(`${where}: the code: line must name activities/…: \`${s.name}\``);
      } else if (wfSteps.has(s.name)) {
        if (!s.refs.some((r) => r.file === wfSteps.get(s.name))) problems.push(`${where}: a workflow step without an activity: the code: line must name ${wfSteps.get(s.name)}`);
      } else problems.push(`${where}: ${s.name} is neither an activity (${[...activities].join(', ')}) nor a workflow step`);
    }
    assert.deepEqual(problems, []);
  });

  it('every activity a workflow calls and every step it runs has its runbook heading with a code: line', () => {
    const problems: string[] = [];
    const steps = runbooks.flatMap((d) => stepsOf(d, problems));
    const headed = new Set(steps.map((s) => s.name));
    const named = new Set(steps.flatMap((s) => s.refs.flatMap((r) => r.names)));
    const activities = allActivities();
    const wfSources = filesUnder(path.join(ROOT, 'workflows'), '.ts').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    const called = [...activities].filter((a) => new RegExp(`\\b${a}\\b`).test(wfSources));
    assert.ok(called.length >= 20, `found only ${called.length} activities in workflow code`);
    for (const a of called) if (!named.has(a)) problems.push(`activity ${a}: no runbook step's code: line names it`);
    for (const [s, file] of workflowSteps()) if (!headed.has(s)) problems.push(`step ${s} (${file}): no runbook heading`);
    assert.deepEqual(problems, []);
  });

  it('the profile a runbook gives a step is the profile its workflow binds that activity to', () => {
    // const { a, b } = proxyActivities<T>({ ...PROFILE, taskQueue: … }) in the workflows.
    const bound = new Map<string, string>();
    for (const f of filesUnder(path.join(ROOT, 'workflows'), '.ts')) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/const \{([^}]+)\} = proxyActivities<[^>]+>\(\{ \.\.\.([A-Z_]+)\b/g)) {
        for (const name of m[1]!.split(',').map((n) => n.trim().split(':')[0]!.trim())) bound.set(name, m[2]!);
      }
    }
    assert.ok(bound.size >= 15, `found only ${bound.size} activities bound to a profile`);
    const problems: string[] = [];
    let checked = 0;
    for (const doc of runbooks) {
      const lines = proseLines(doc);
      for (const s of stepsOf(doc, [])) {
        const end = lines.findIndex((l, i) => i >= s.line && /^#{1,3} /.test(l));
        const said = /profile `([A-Z_]+)`/.exec(lines.slice(s.line, end < 0 ? undefined : end).join('\n'))?.[1];
        if (!said || !bound.has(s.name)) continue;
        checked++;
        if (said !== bound.get(s.name)) problems.push(`${rel(doc)}:${s.line}: ${s.name} runs under ${bound.get(s.name)}, the runbook says ${said}`);
      }
      // The restore runbook's table: | `PROFILE` | step, step | …
      for (const [i, l] of lines.entries()) {
        const row = /^\| `([A-Z_]+)`(?: \([^)]*\))? \| ([^|]+) \|/.exec(l);
        if (!row) continue;
        for (const name of row[2]!.split(',').map((n) => n.trim().split(' ')[0]!)) {
          if (!bound.has(name)) continue;
          checked++;
          if (bound.get(name) !== row[1]) problems.push(`${rel(doc)}:${i + 1}: ${name} runs under ${bound.get(name)}, the table says ${row[1]}`);
        }
      }
    }
    assert.ok(checked >= 15, `checked only ${checked} profile statements`);
    assert.deepEqual(problems, []);
  });

  it('docs/worker-roles.md lists exactly the activities each role builds', () => {
    const table = fs.readFileSync(path.join(ROOT, 'docs', 'worker-roles.md'), 'utf8');
    const built = roleActivities();
    for (const role of ['backup', 'restore', 'notify'] as const) {
      const row = table.split('\n').find((l) => l.startsWith(`| \`${role}\` |`));
      assert.ok(row, `docs/worker-roles.md has no row for ${role}`);
      const cells = row.split('|').map((c) => c.trim());
      const listed = [...cells[4]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
      assert.deepEqual(listed, [...built[role]].sort(), `docs/worker-roles.md, role ${role}`);
    }
  });

  it('every card is one page in the card shape, and every alert has one', () => {
    assert.ok(cards.length >= 20, `only ${cards.length} cards`);
    const problems: string[] = [];
    for (const c of cards) {
      const lines = fs.readFileSync(c, 'utf8').replace(/\n$/, '').split('\n');
      const name = rel(c);
      if (lines.length > CARD_MAX_LINES) problems.push(`${name}: ${lines.length} lines, a card has at most ${CARD_MAX_LINES}`);
      const sections = lines.filter((l) => l.startsWith('## ')).map((l) => l.slice(3).trim());
      const want = ['What you see', 'What it means', 'First actions', 'Escalation', 'Reference'];
      if (sections.join('|') !== want.join('|')) problems.push(`${name}: sections ${sections.join(', ')}; a card has ${want.join(', ')}`);
      const at = lines.indexOf('## First actions');
      const actions = lines.slice(at + 1, lines.findIndex((l, i) => i > at && l.startsWith('## '))).filter((l) => /^\d+\. /.test(l));
      if (actions.length !== 3) problems.push(`${name}: ${actions.length} first actions, a card has 3`);
      const ref = lines.slice(lines.indexOf('## Reference'));
      if (!ref.some((l) => /\]\(\.\.\/[\w-]+\.md(#[\w-]+)?\)/.test(l))) problems.push(`${name}: its Reference links no reference page`);
    }
    // One card per alert, named after it: the rules' alerts and the monitor's.
    const rules = fs.readFileSync(path.join(ROOT, 'deploy', 'prometheus', 'rules', 'vault-dr.rules.yml'), 'utf8');
    const monitor = ['common/monitor.ts', 'workflows/monitoring/vaultHealthMonitor.ts'].map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
    const alerts = new Set([...rules.matchAll(/- alert: (\w+)/g), ...monitor.matchAll(/\bkey: '(\w+)'/g)].map((m) => m[1]!));
    assert.ok(alerts.size >= 18, `found only ${alerts.size} alert names`);
    for (const a of alerts) if (!fs.existsSync(path.join(CARDS, `${a}.md`))) problems.push(`alert ${a} has no card docs/runbooks/cards/${a}.md`);
    // The index lists every card.
    const index = fs.readFileSync(path.join(CARDS, 'README.md'), 'utf8');
    for (const c of cards) if (!index.includes(`](${path.basename(c)})`)) problems.push(`docs/runbooks/cards/README.md does not list ${path.basename(c)}`);
    assert.deepEqual(problems, []);
  });

  it('every `npm run <script>` the docs mention is a script in package.json', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const problems: string[] = [];
    let runs = 0;
    for (const f of docFiles()) {
      fs.readFileSync(f, 'utf8')
        .split('\n')
        .forEach((l, i) => {
          for (const m of l.matchAll(/\bnpm run ([\w:-]+)/g)) {
            runs++;
            if (!(m[1]! in scripts)) problems.push(`${rel(f)}:${i + 1}: npm run ${m[1]} is not a script in package.json`);
          }
        });
    }
    assert.ok(runs >= 5, `found only ${runs} npm run mentions`);
    assert.deepEqual(problems, []);
  });

  it("the README's quick start is two commands", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    assert.deepEqual(block.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).map((l) => l.split('#')[0]!.trim()), ['npm start', 'npm test']);
  });
});
