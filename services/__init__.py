"""iuran services: one package per process, plus the pure domain and the shared runtime."""
