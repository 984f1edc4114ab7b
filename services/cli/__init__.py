"""The ``iuran`` command line."""
