# vaultdr-unseal-ceremony: the restore role's token for rotateUnsealKeys (rotation.unsealTokenFile):
# start and watch the root-key rotation, read and then delete OpenBao's PGP-encrypted backup copy
# of the new shares, snapshot the cluster for the throwaway proof copy.
path "sys/rotate/root/init" {
  capabilities = ["create", "read", "update", "sudo"]
}
path "sys/rotate/root/verify" {
  capabilities = ["read", "sudo"]
}
path "sys/rotate/root/backup" {
  capabilities = ["read", "delete", "sudo"]
}
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
