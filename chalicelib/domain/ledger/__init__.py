"""The event ledger: canonical bytes, the append-only event sequence, and the Merkle trees anchored on chain."""
