// Test support: how docs/drills/ gets a drill's committed report. With VAULTDR_DRILL_REPORT_DIR=<dir>
// set, a drill test writes the report it just produced there as <scenario>-<date>.{md,html,svg,json}
// (the Markdown links the SVG beside it); without it, nothing is written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DrDrillReport } from '../../common/drillRun';
import { renderDrillReportMarkdown, renderTimelineSvg } from '../../infra/drills/report';

export function writeCommittedReport(report: DrDrillReport, html: string): void {
  const out = process.env.VAULTDR_DRILL_REPORT_DIR;
  if (!out) return;
  fs.mkdirSync(out, { recursive: true });
  const stem = `${report.scenario}-${report.startedAt.slice(0, 10)}`;
  fs.writeFileSync(path.join(out, `${stem}.svg`), renderTimelineSvg(report) + '\n');
  fs.writeFileSync(path.join(out, `${stem}.md`), renderDrillReportMarkdown(report, { svgFile: `${stem}.svg` }));
  fs.writeFileSync(path.join(out, `${stem}.html`), html);
  fs.writeFileSync(path.join(out, `${stem}.json`), JSON.stringify(report, null, 2) + '\n');
}
