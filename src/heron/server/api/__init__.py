"""The JSON read API (documented by the app's OpenAPI schema)."""

from heron.server.api._auth import require_api_token

__all__ = ["require_api_token"]
