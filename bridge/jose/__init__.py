"""The neutral keys and JOSE part: strict bounded JSON, one compact JWS parser for every token
the bridge is handed, sealing of secrets at rest, the bridge's signing keys, key sets and the
verification of JWTs from trusted issuers. It knows nothing of who calls it."""
