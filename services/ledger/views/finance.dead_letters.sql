-- Finance and ops list dead letters here. The value is shown as text with every byte that
-- is not printable ASCII escaped (encode 'escape'), so any bytes at all can be shown. Like
-- the other finance views it carries personal data (a schedule holds a NIK): the API and
-- the CLI mask digit runs for whoever may not see them.
CREATE VIEW finance.dead_letters AS
SELECT dead_letter_id, service, topic, partition, "offset", reason, detail,
       encode(key, 'escape') AS key_text, encode(value, 'escape') AS value_text,
       octet_length(value) AS value_bytes, recorded_at
  FROM ledger.dead_letters;
GRANT SELECT ON finance.dead_letters TO iuran_ledger_writer, iuran_finance;
