-- Finance and BI tools: the decisions through a view (the state documents stay internal).
CREATE VIEW finance.registration_decisions AS
SELECT event_id, event_type, nik, programme, opd_code, outcome, periods, errors, warnings,
       schedule_ids, rejection_id, source_topic, source_partition, source_offset, decided_at
  FROM registry.decisions;
GRANT SELECT ON finance.registration_decisions TO iuran_ledger_writer, iuran_finance;
