"""Errors of the ``iuran`` command line (kept apart from ``main`` so that the class is the
same whether the CLI runs as ``iuran`` or as ``python -m services.cli.main``)."""


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""
