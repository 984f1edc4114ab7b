-- The due date that makes a month late: a prepaid month is due with its bill (never before
-- it is billed); a monthly month on its own due date.
CREATE OR REPLACE FUNCTION finance.effective_due_date(billing text, bill_due date, month_due date)
    RETURNS date LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN billing = 'prepaid' THEN bill_due ELSE month_due END
$$;
GRANT EXECUTE ON FUNCTION finance.effective_due_date(text, date, date)
    TO iuran_finance, iuran_ledger_writer;
