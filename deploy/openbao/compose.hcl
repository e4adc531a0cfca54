# docker-compose deployment: listener and raft storage inside the openbao container.
listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true # terminate TLS at your proxy; see docs
}

storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-1"
}

api_addr     = "http://openbao:8200"
cluster_addr = "http://openbao:8201"
