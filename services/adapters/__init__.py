"""Adapters shared by the CLI and the API that are neither Kafka nor PostgreSQL: upload files
(CSV/XLSX) read into sheets of cells (``tables``) and the upload templates written
(``templates``)."""
