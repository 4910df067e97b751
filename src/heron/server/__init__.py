"""The Heron server: OTLP ingest, storage, queries and the HTTP API.

Importing this package pulls in the server's dependencies (DuckDB, FastAPI); the agent
(`import heron`) must never import it.
"""
