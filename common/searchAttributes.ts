// The search attributes vault-dr workflows upsert as they move, so the Temporal Web UI's list view
// (and `vaultdr restore list --waiting`) can say what each run is doing and waiting for without the
// codec. All Keyword. Every server that runs vault-dr workflows must register them first (an
// upsert of an unregistered attribute fails the workflow task): the stack's dev server
// (stack/stack.ts, --search-attribute), docker-compose's namespace job, and the test environments.
// Values are never secrets: step names, what a run waits for, backup ids, restore targets.
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/** The current step ("selectBackup", "awaitApproval", "done", "failed"). */
export const VAULT_DR_STEP = defineSearchAttributeKey('VaultDrStep', SearchAttributeType.KEYWORD);
/** What the run waits for ("approval", "custodian shares", "target unsealed"); unset when not waiting. */
export const WAITING_FOR = defineSearchAttributeKey('WaitingFor', SearchAttributeType.KEYWORD);
/** The backup a backup or restore run is about, once known. */
export const BACKUP_ID = defineSearchAttributeKey('BackupId', SearchAttributeType.KEYWORD);
/** A restore's target ("staging", "production"). */
export const RESTORE_TARGET = defineSearchAttributeKey('RestoreTarget', SearchAttributeType.KEYWORD);

export const VAULT_DR_SEARCH_ATTRIBUTES = [VAULT_DR_STEP, WAITING_FOR, BACKUP_ID, RESTORE_TARGET];
export type VaultDrSearchAttribute = (typeof VAULT_DR_SEARCH_ATTRIBUTES)[number];

/** `temporal server start-dev` arguments registering them. */
export const devServerSearchAttributeArgs = (): string[] => VAULT_DR_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]);

/** The list query for production restores waiting for a person's approval (the Web UI's and `vaultdr restore list --waiting`'s). */
export const WAITING_FOR_APPROVAL_QUERY = "WorkflowType = 'restoreVault' AND WaitingFor = 'approval'";
