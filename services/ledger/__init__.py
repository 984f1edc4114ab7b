"""The payment ledger: books every contribution once in a double-entry Postgres journal."""
