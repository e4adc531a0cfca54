// Test support: bring the real local stack up once per mocha run and load its config.
import * as path from 'node:path';
import { loadConfig, type Config } from '../../infra/config';
import { stackDir, stackUp } from '../../stack/stack';

let up: Promise<Config> | undefined;

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

/** Starts (or reuses) the real stack and returns the config the worker and CLI use. */
export function ensureStack(): Promise<Config> {
  up ??= stackUp().then(() => loadConfig({ file: path.join(stackDir(), 'vaultdr.json'), env: {} }));
  return up;
}

/** A task queue of its own per test, so tests never pick up each other's tasks. */
export function uniqueQueue(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export function withQueue(cfg: Config, taskQueue: string): Config {
  return { ...cfg, temporal: { ...cfg.temporal, taskQueue } };
}
