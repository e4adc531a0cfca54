// Test support for the Web UI browser test: Debian's Chromium driven by playwright-core (never a
// downloaded browser), a codec endpoint serving where the UI was told to look, and the operator's
// actions in the Temporal Web UI (start a workflow, run a query, send an update) as small helpers.
// The selectors are the UI's own ids and accessible names (Temporal UI 2.54); when the UI changes,
// this file is the one place to adjust.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Config } from '../../infra/config';
import { URLS } from '../../stack/stack';
import { startCodecServer } from '../../workers/main';
import { PROJECT_ROOT } from './stack';

export const UI = URLS.temporalUi.replace('localhost', '127.0.0.1');
export const SCREENSHOTS = path.join(PROJECT_ROOT, 'docs', 'screenshots');

/** Debian's package installs here (scripts/ensure-deps.sh --test-tools); VAULTDR_CHROMIUM overrides. */
export function chromiumPath(): string {
  const p = process.env.VAULTDR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(p)) throw new Error(`no Chromium at ${p}: run scripts/ensure-deps.sh --test-tools (installs Debian's chromium)`);
  return p;
}

export async function launchBrowser(): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
  // 1280x800 keeps the committed screenshots small and readable.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  return { browser, page };
}

/** The Web UI's own settings, as the browser sees them (version, codec endpoint, what is enabled). */
export interface UiSettings {
  Version: string;
  Codec: { Endpoint: string };
  StartWorkflowDisabled: boolean;
  WorkflowUpdateDisabled: boolean;
}

export async function uiSettings(): Promise<UiSettings> {
  const res = await fetch(`${UI}/api/v1/settings`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`Temporal Web UI at ${UI} answered ${res.status}`);
  return (await res.json()) as UiSettings;
}

/**
 * Makes sure a vault-dr codec endpoint answers at the address the UI was started with. The stack's
 * worker process serves one when it runs; otherwise this starts the worker's own codec server
 * (same code, same keyring) in this process. Returns a function that stops what it started.
 */
export async function ensureCodecEndpoint(cfg: Config, endpoint: string): Promise<() => Promise<void>> {
  const url = new URL(endpoint);
  const answering = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
  if (answering) return async () => undefined;
  const server: http.Server = await startCodecServer({ ...cfg, codec: { ...cfg.codec, listen: `${url.hostname}:${url.port}` } });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Types JSON into one of the UI's code editors (CodeMirror: a contenteditable with a label). */
async function typeJson(page: Page, editor: ReturnType<Page['locator']>, json: unknown): Promise<void> {
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText, not type(): the editor auto-closes brackets and quotes while typing.
  await page.keyboard.insertText(JSON.stringify(json));
  // The form takes the editor's text when the editor loses focus.
  await page.keyboard.press('Tab');
}

/** A link when the list has rows, a button while it loads or is empty. */
export const startWorkflowButton = (page: Page) => page.getByRole('link', { name: 'Start Workflow', exact: true }).or(page.getByRole('button', { name: 'Start Workflow', exact: true })).first();

export async function startWorkflowFromUi(page: Page, o: { namespace: string; workflowId: string; taskQueue: string; workflowType: string; input: unknown }): Promise<void> {
  await page.goto(`${UI}/namespaces/${o.namespace}/workflows`);
  await startWorkflowButton(page).click();
  await page.locator('#workflowId').fill(o.workflowId);
  await page.locator('#taskQueue').fill(o.taskQueue);
  await page.locator('#workflowType').fill(o.workflowType);
  await typeJson(page, page.locator('[aria-label="Data"]'), o.input);
  await page.getByTestId('start-workflow-button').click();
}

/** Runs a query from the workflow page's Queries tab; returns the answer as the UI shows it. */
export async function runQueryFromUi(page: Page, queryType: string): Promise<string> {
  await page.getByRole('tab', { name: 'Queries' }).click();
  await page.getByTestId('query-select-button').click();
  await page.getByRole('option', { name: queryType, exact: true }).click();
  await page.getByRole('button', { name: /^(Run|Refresh) Query$/ }).click();
  const answer = page.getByRole('textbox', { name: 'Query Result' });
  await answer.filter({ hasText: /\S/ }).waitFor();
  return answer.innerText();
}

/** What the UI said about an update: accepted (the form closed) or the reason it shows. */
export interface UpdateVerdict {
  accepted: boolean;
  text: string;
}

/**
 * Sends an update from the workflow page (More Actions → Send an Update) and waits for the UI's
 * verdict: accepted when the form closes, rejected when it stays open showing the handler's or
 * validator's error.
 */
export async function sendUpdateFromUi(page: Page, name: string, json: unknown): Promise<UpdateVerdict> {
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send an Update' }).click();
  const dialog = page.getByTestId('update-confirmation-modal').filter({ visible: true });
  // A free-text name when the workflow declares no updates; a picker when its worker lists them.
  const free = dialog.locator('#update-name');
  if (await free.isVisible()) await free.fill(name);
  else {
    await dialog.getByTestId('update-select-button').click();
    await dialog.getByRole('option', { name, exact: true }).click();
  }
  await typeJson(page, dialog.locator('[aria-label="Data"]'), json);
  const before = await dialog.innerText();
  await dialog.getByRole('button', { name: 'Submit' }).click();
  for (const until = Date.now() + 30_000; Date.now() < until; await page.waitForTimeout(250)) {
    if (!(await dialog.isVisible())) {
      const toasts = await page.locator('[role=alert], [role=status], [data-testid*=toast]').allInnerTexts();
      return { accepted: true, text: toasts.join('\n') };
    }
    const now = await dialog.innerText();
    if (now !== before && /error|invalid|reject|not|fail/i.test(now)) return { accepted: false, text: now };
  }
  throw new Error(`the UI gave no verdict on update ${name} within 30s; the form shows: ${await dialog.innerText()}`);
}
