-- Every allocation ever set, with its reason: the audit trail of the budget.
CREATE VIEW finance.budget_changes AS
SELECT change_id, programme, funding_source, fiscal_year, previous_idr, allocated_idr,
       allocated_idr - previous_idr AS raised_by_idr, source, reason, changed_by, changed_at
  FROM ledger.budget_allocation_changes;
GRANT SELECT ON finance.budget_changes TO iuran_ledger_writer, iuran_finance;
