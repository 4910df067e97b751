"""The official OpenTelemetry SDK and OTLP/HTTP exporter, unmodified, configured only by
OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and OTEL_SERVICE_NAME."""

import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("plain-otel-test")

attributes = {
    "http.request.method": "GET",
    "http.route": "/plain/{id}",
    "http.response.status_code": 200,
}
with (
    tracer.start_as_current_span(
        "GET /plain/{id}", kind=trace.SpanKind.SERVER, attributes=attributes
    ),
    tracer.start_as_current_span("compute", attributes={"step": 1}),
):
    time.sleep(0.02)
provider.shutdown()
print("sent")
