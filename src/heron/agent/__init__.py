"""The Heron agent: OpenTelemetry set up with heron's defaults, made safe to embed.

The public API is re-exported by :mod:`heron`; everything here is implementation:

- ``config``: options from keyword arguments and ``HERON_*`` / ``OTEL_*`` variables;
- ``runtime``: the process-wide ``init`` / ``flush`` / ``shutdown`` / ``stats``;
- ``otel``: the SDK pipeline (resource, provider, batching, OTLP/HTTP exporter);
- ``exporter``, ``processor``: counting wrappers (drops are counted, outages logged once);
- ``guard``: internal errors are logged and swallowed, never raised into the app;
- ``fork``: what a forked worker must redo beyond what the SDK already does;
- ``api``: ``span`` and ``traced``; ``integrations/``: one module per library;
- ``_sql``, ``_explain``: database statements without their literals, and EXPLAIN plans
  of slow queries (``integrations/_db`` is the span logic the SQL integrations share);
- ``run``: ``heron run -- <command>`` for apps that do not call ``heron.init()``.

Nothing here may import the server's dependencies.
"""
