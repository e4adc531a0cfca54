// Every workflow the worker registers. Only workflow code and workflow-safe modules are imported here.
export { vaultHealthCheck } from './vaultHealthCheck';
export { backupVault } from './backupVault';
export { restoreVault } from './restoreVault';
export { vaultHealthMonitor } from './vaultHealthMonitor';
export { alertDeliveryTest } from './alertDeliveryTest';
export { migrateVps } from './migration/migrateVps';
export { recoverSmtpCredentials } from './migration/recoverSmtpCredentials';
