"""A plain load command for the ``-- COMMAND`` and start/stop tests: ``N`` sequential GETs
of each path given (``python traffic.py BASE N /a /b``); exits non-zero on any failure."""

import sys
import urllib.request

base, n, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for _ in range(n):
    for path in paths:
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            assert resp.status == 200
print(f"traffic: {n * len(paths)} requests")
