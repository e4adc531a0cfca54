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
path "secret/metadata/vault-dr/*" {
  capabilities = ["read", "list"]
}
