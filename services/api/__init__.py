"""The read API for finance, auditors and operations (FastAPI): `iuran service api`."""
