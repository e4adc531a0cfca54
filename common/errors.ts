// The one enum of failure types vault-dr raises. Workflows catch by `type`, never by message text.
export const ErrorType = {
  InvalidInput: 'InvalidInput',
  ConfigInvalid: 'ConfigInvalid',
  VaultUnreachable: 'VaultUnreachable',
  VaultSealed: 'VaultSealed',
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
