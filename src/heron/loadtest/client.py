"""HTTP calls to a Heron server's load-test API, with the standard library only.

Like ``heron analyze``: ``--url``/``HERON_URL`` and ``--token``/``HERON_API_TOKEN``, a
bearer token (so no CSRF token is needed for the POSTs). Every failure, HTTP or network,
becomes an :class:`ApiError` whose message the CLI prints before exiting 2.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:4318"

Json = dict[str, Any]


class ApiError(Exception):
    """The server refused (``status`` = its HTTP code) or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class Client:
    """One Heron server's ``/api/v1/loadtests`` routes."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.url = (url or os.environ.get("HERON_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("HERON_API_TOKEN", "")
        self.timeout = timeout

    # ------------------------------------------------------------------ routes
    def start(self, body: Json) -> Json:
        """``POST /loadtests`` (a ``NewRun``) → the run."""
        return self._call("POST", "/loadtests", body=body)

    def finish(self, run_id: int, body: Json) -> Json:
        """``POST /loadtests/{id}/finish`` (a ``FinishRun``) → the run."""
        return self._call("POST", f"/loadtests/{run_id}/finish", body=body)

    def get(self, run_id: int) -> Json:
        """``GET /loadtests/{id}`` → the run with its ``summary``."""
        return self._call("GET", f"/loadtests/{run_id}")

    def runs(self, name: str | None = None, limit: int = 50) -> list[Json]:
        """``GET /loadtests`` → runs, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if name:
            params["name"] = name
        runs: list[Json] = self._call("GET", "/loadtests", params=params).get("runs", [])
        return runs

    def compare(
        self,
        run_id: int,
        baseline: str | None = None,
        threshold: float | None = None,
        alpha: float | None = None,
    ) -> Json:
        """``GET /loadtests/{id}/compare`` → the comparison (the server stores the verdict)."""
        params = {
            k: v
            for k, v in (("baseline", baseline), ("threshold", threshold), ("alpha", alpha))
            if v is not None
        }
        return self._call("GET", f"/loadtests/{run_id}/compare", params=params)

    def resolve(self, run: str) -> int:
        """A run id (digits) as is; a name → its newest run's id."""
        if run.isdigit():
            return int(run)
        runs = self.runs(name=run, limit=1)
        if not runs:
            raise ApiError(404, f"no run named {run!r} on {self.url}")
        return int(runs[0]["id"])

    def ui_link(self, path: str) -> str:
        """An absolute link to a UI page (the API gives paths)."""
        return f"{self.url}{path}"

    # ------------------------------------------------------------------ transport
    def _call(
        self, method: str, path: str, body: Json | None = None, params: dict[str, Any] | None = None
    ) -> Json:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            f"{self.url}/api/v1{path}{query}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, f"{method} {path}: {e.code} {_detail(e)}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ApiError(0, f"cannot reach {self.url}: {e}") from None
        if not raw:
            return {}
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ApiError(0, f"{method} {path}: the answer is not JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise ApiError(0, f"{method} {path}: unexpected answer {str(answer)[:200]}")
        return answer


def _detail(e: urllib.error.HTTPError) -> str:
    """The server's error message (FastAPI's ``detail``), else the raw body, shortened."""
    text = e.read().decode("utf-8", "replace")[:1000]
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    return str(detail)[:500]
