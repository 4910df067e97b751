"""Server-side analysis of stored telemetry: SQL fingerprints, N+1 detection."""
