"""The JSON read API (documented by the app's OpenAPI schema)."""
