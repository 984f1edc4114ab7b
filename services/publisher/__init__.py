"""The OPD upload tool behind ``iuran publish``: a CSV or XLSX of workers becomes
registration events.

- ``table``: read the file into numbered rows of cells (no rules, no broker);
- ``rows``: turn rows into events or row errors with the domain rules (pure);
- ``rejects``: write the rows that failed, with their errors, to a CSV file;
- ``kafka``: the adapter that publishes the events;
- ``template``: the template files shipped under ``deploy/templates``.
"""
