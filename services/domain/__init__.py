"""Pure domain code: plain functions over plain values, no Kafka, Faust or asyncpg."""
