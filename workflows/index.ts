// Every workflow the worker registers. Only workflow code and workflow-safe modules are imported here.
export { vaultHealthCheck } from './monitoring/vaultHealthCheck';
export { backupVault } from './backup/backupVault';
export { restoreVault } from './restore/restoreVault';
export { vaultHealthMonitor } from './monitoring/vaultHealthMonitor';
export { alertDeliveryTest } from './monitoring/alertDeliveryTest';
export { failoverDrill } from './ha/failoverDrill';
export { breachResponse } from './emergency/breachResponse';
export { rotateCredential } from './emergency/rotateCredential';
export { sealUnsealDrill } from './emergency/sealUnsealDrill';
export { rotateUnsealKeys } from './emergency/rotateUnsealKeys';
export { drillFinding } from './drills/drillFinding';
export { drDrill } from './drills/drDrill';
export { migrateVps } from './migration/migrateVps';
export { recoverSmtpCredentials } from './migration/recoverSmtpCredentials';
