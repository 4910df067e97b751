"""OpenTelemetry semantic-convention attribute names Heron reads, in one place.

Where a name changed between convention versions, the current name comes first and the
older aliases follow; readers take the first one present.
"""

from __future__ import annotations

# Resource attributes.
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
TELEMETRY_SDK_NAME = "telemetry.sdk.name"
TELEMETRY_SDK_VERSION = "telemetry.sdk.version"
TELEMETRY_SDK_LANGUAGE = "telemetry.sdk.language"
TELEMETRY_DISTRO_NAME = "telemetry.distro.name"

# Span attributes lifted into span columns (current name first, then older aliases).
HTTP_METHOD_KEYS = ("http.request.method", "http.method")
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
DB_SYSTEM_KEYS = ("db.system.name", "db.system")
DB_STATEMENT_KEYS = ("db.query.text", "db.statement")
HTTP_ROUTE_KEYS = ("http.route",)
LIFTED_KEYS = frozenset(
    HTTP_METHOD_KEYS + HTTP_STATUS_KEYS + DB_SYSTEM_KEYS + DB_STATEMENT_KEYS + HTTP_ROUTE_KEYS
)
# The canonical name each lifted column is shown under.
CANONICAL = {
    "http_method": HTTP_METHOD_KEYS[0],
    "http_route": HTTP_ROUTE_KEYS[0],
    "http_status": HTTP_STATUS_KEYS[0],
    "db_system": DB_SYSTEM_KEYS[0],
    "db_statement": DB_STATEMENT_KEYS[0],
}

# Exception attributes (on a span's "exception" event or a log record).
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"
EXCEPTION_ESCAPED = "exception.escaped"
