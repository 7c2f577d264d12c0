"""The domain: models and rules, free of I/O (no AWS, web3 or Chalice imports)."""
