"""The benchmark behind ``make bench``: iuran against the raw floor of the same machine."""
