"""Finance domain: real-time card-fraud scoring (see plugin.FinanceDomain)."""
