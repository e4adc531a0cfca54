# vaultdr-worker: least privilege for the vault-dr worker's AppRole.
# Grows with each capability; every path here is used by an activity named in the comment.

# checkVaultHealth: raft membership and autopilot state.
path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}
path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}

# Secrets vault-dr itself needs at the point of use (alert channel URLs, SMTP credentials, ...).
path "secret/data/vault-dr/*" {
  capabilities = ["read"]
}
# snapshotToStore: the KV inventory recorded in the manifest (paths and version numbers, metadata
# only: this grants no secret values).
path "secret/metadata/*" {
  capabilities = ["read", "list"]
}
# OpenBao's detailed LIST: a page of keys with their metadata per request (the fast path of the
# inventory; without it the inventory falls back to one metadata read per secret).
path "secret/detailed-metadata/*" {
  capabilities = ["list"]
}

# snapshotToStore: stream the raft snapshot of the active node.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}

# writeCanary: the marker a restore must read back (identifies the backup it came from).
path "secret/data/vault-dr/canary" {
  capabilities = ["create", "update", "read"]
}
