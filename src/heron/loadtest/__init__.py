"""``heron loadtest``: mark load-test runs on a Heron server and gate CI on regressions.

The client side of load-test runs (docs/loadtest.md). It only talks HTTP to a running
server's ``/api/v1/loadtests`` routes, so it imports nothing of ``heron.server`` and
nothing heavy at import time: the CLI starts fast, and Locust (which monkey-patches the
standard library with gevent on import) runs in a child process
(``python -m heron.loadtest.locust_driver``), never in this one.
"""
