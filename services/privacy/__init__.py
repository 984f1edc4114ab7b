"""Personal data under UU 27/2022: the deployment's keys (opaque cursors, keyed pseudonyms of
ids derived from a NIK), the access log, a data subject's record and retention."""
