// The one enum of failure types vault-dr raises. Workflows catch by `type`, never by message text.
import { ApplicationFailure } from '@temporalio/common';

export const ErrorType = {
  InvalidInput: 'InvalidInput',
  ConfigInvalid: 'ConfigInvalid',
  VaultUnreachable: 'VaultUnreachable',
  VaultSealed: 'VaultSealed',
  VaultUnavailable: 'VaultUnavailable',
  TransferStalled: 'TransferStalled',
  VaultAuthFailed: 'VaultAuthFailed',
  StoreUnreachable: 'StoreUnreachable',
  MailUnreachable: 'MailUnreachable',
  VaultStandby: 'VaultStandby',
  VaultRequestRejected: 'VaultRequestRejected',
  BucketNotCompliant: 'BucketNotCompliant',
  KeyMaterialMissing: 'KeyMaterialMissing',
  SnapshotInvalid: 'SnapshotInvalid',
  BackupCorrupt: 'BackupCorrupt',
  BackupNotFound: 'BackupNotFound',
  VerificationFailed: 'VerificationFailed',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** A typed failure for activities to throw; non-retryable unless said otherwise. */
export function failure(type: string, message: string, nonRetryable = true): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable });
}
