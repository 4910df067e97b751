"""Ingest: decode wire formats into internal records. Never touches SQL."""
