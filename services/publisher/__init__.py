"""The OPD upload tool behind ``iuran publish``: a CSV or XLSX of workers becomes
registration events.

The file is read by :mod:`services.adapters.tables` and its rows are turned into events or
row errors by :mod:`services.domain.rows` (the registration gateway of the API uses the
same two); here:

- ``rejects``: write the rows that failed, with their errors, to a CSV file;
- ``kafka``: the adapter that publishes the events;
- ``progress``: the progress bar of a long upload.
"""
