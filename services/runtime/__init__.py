"""Shared runtime: settings, embedded infrastructure, logging, Kafka and Postgres adapters."""
