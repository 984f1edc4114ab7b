"""BPJS Ketenagakerjaan in the loop: the collective-registration file iuran submits, BPJS's
verdicts on each worker and BPJS's bills, read from BPJS's files (docs/bpjs.md)."""
