"""D-REC platform: registry, validation, issuance, trading and ledger of Distributed Renewable Energy Certificates."""
