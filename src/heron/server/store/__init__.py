"""Storage: the Store protocol and its DuckDB implementation."""
