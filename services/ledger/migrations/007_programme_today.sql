-- Business dates in each programme's time zone: finance.today() took every programme's day
-- in WIB; finance.today(programme, moment) (services/ledger/functions/finance.today.sql)
-- takes the zone the ledger recorded for the programme (ledger.programme_time_zones). The
-- views that called the old one are dropped before this runs and created again from their
-- files after it.
DROP FUNCTION IF EXISTS finance.today();
