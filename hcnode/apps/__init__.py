"""Domain apps: one pure module per area of the ledger (registry, drugs, billing, ...)."""
