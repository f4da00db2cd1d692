"""Durable state: API keys (SQLite by default; the KeyStore protocol lets Redis/Postgres replace it)."""
