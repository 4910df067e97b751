"""Load-test runs: ``/api/v1/loadtests`` — start and finish a run, list, read (with the
run's per-endpoint summary), compare with a baseline run (the regression gate: it stores
the verdict), the run's time series, delete (docs/loadtest.md, docs/api.md).

Changes need the API token, or a session with the page's CSRF token in
``X-CSRF-Token``. Bad bodies and parameters answer 400 with a message, an unknown run
404, comparing a run that still runs 409. No ``from __future__ import annotations``:
FastAPI reads parameter annotations at runtime.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from heron.server.analyze.grading import parse_thresholds
from heron.server.analyze.loadtest_stats import Settings
from heron.server.api._params import Project
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody
from heron.server.auth import verify_csrf
from heron.server.context import Ctx
from heron.server.errors import BadRequest, Conflict, NotFound
from heron.server.model.loadtest import MAX_NAME, FinishRun, NewRun
from heron.server.query import loadtest as lq


class LoadTestRoute(ApiRoute):
    """Maps the load-test query's exceptions to 404 and 409."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except lq.RunNotFound as e:
                raise NotFound(str(e)) from None
            except lq.RunStillRunning as e:
                raise Conflict(str(e)) from None

        return handle


async def _csrf_unless_bearer(request: Request) -> None:
    """Bearer tokens are never sent by a browser on its own; cookies are."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # the router's dependency has already checked it
    await verify_csrf(request)


router = APIRouter(route_class=LoadTestRoute, tags=["load tests"])
_change = [Depends(_csrf_unless_bearer)]
_CHANGES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Session without a CSRF token."},
}
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such run."}
}
RunId = Annotated[int, Path(ge=1, le=2**62, description="The run's id, as listed.")]


def _describe(e: ValidationError) -> str:
    """``body field 'labels.a': Input should be a valid string`` for each failure."""
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"body field {where!r}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts)


def _parse(model: type[NewRun] | type[FinishRun], body: Any) -> Any:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise BadRequest(_describe(e)) from None


@router.post("/loadtests", status_code=201, responses={**_CHANGES}, dependencies=_change)
def start_run(
    ctx: Ctx,
    project: Project,
    body: Annotated[Any, Body(description="`NewRun`: name, labels, baseline, load, tool…")],
) -> dict[str, Any]:
    """Start a run now (or at `start_ns`): its window opens; answers the run."""
    new: NewRun = _parse(NewRun, body)
    now = ctx.clock()
    run = ctx.store.state.create_loadtest(project, new, new.start_ns or now, now)
    return lq.run_json(run, now)


@router.post("/loadtests/{run_id}/finish", responses={**_MISSING, **_CHANGES}, dependencies=_change)
def finish_run(
    ctx: Ctx,
    project: Project,
    run_id: RunId,
    body: Annotated[Any, Body(description="`FinishRun`: status, exit_code, load, end_ns.")] = None,
) -> dict[str, Any]:
    """Close the run's window now (or at `end_ns`). Finishing a finished run changes
    nothing (a retried request is harmless)."""
    fin: FinishRun = _parse(FinishRun, body)
    now = ctx.clock()
    current = lq.get_run(ctx.store, project, run_id)
    end = fin.end_ns if fin.end_ns is not None else now
    if end < current.start_ns:
        raise BadRequest("end_ns is before the run's start")
    run = ctx.store.state.finish_loadtest(
        project, run_id, status=fin.status, end_ns=end, exit_code=fin.exit_code, load=fin.load,
        now_ns=now,
    )  # fmt: skip
    if run is None:
        raise NotFound(f"no load-test run {run_id}")
    return lq.run_json(run, now)


@router.get("/loadtests")
def list_runs(
    ctx: Ctx,
    project: Project,
    name: Annotated[
        str | None, Query(max_length=MAX_NAME, description="Only runs so named.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many runs.")] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only runs with a smaller id (paging).")
    ] = None,
) -> dict[str, Any]:
    """Runs, newest first."""
    now = ctx.clock()
    runs = ctx.store.state.list_loadtests(project, name=name or None, limit=limit, before_id=before)
    return {"runs": [lq.run_json(r, now) for r in runs]}


@router.get("/loadtests/{run_id}", responses=_MISSING)
def get_run(ctx: Ctx, project: Project, run_id: RunId) -> dict[str, Any]:
    """The run, with `summary`: per-endpoint figures of this run alone (a running run's
    so far), most requests first."""
    now = ctx.clock()
    run = lq.get_run(ctx.store, project, run_id)
    return {**lq.run_json(run, now), "summary": lq.run_summary(ctx.store, project, run, now)}


@router.get(
    "/loadtests/{run_id}/compare",
    responses={**_MISSING, 409: {"model": ErrorBody, "description": "A run is still running."}},
)
def compare(
    ctx: Ctx,
    project: Project,
    run_id: RunId,
    baseline: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME,
            description="A run id, or a run name (its newest finished run before this "
            "one). Default: the run's own baseline.",
        ),
    ] = None,
    threshold: Annotated[
        float, Query(gt=0, le=10, description="Least p95 rise counted, as a fraction.")
    ] = 0.2,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="Significance level.")] = 0.01,
    error_threshold_pp: Annotated[
        float, Query(gt=0, le=100, description="Least error-rate rise counted, in points.")
    ] = 1.0,
    min_requests: Annotated[
        int, Query(ge=2, le=1_000_000, description="Requests needed on each side.")
    ] = 30,
) -> dict[str, Any]:
    """Compare the run with a baseline run, endpoint by endpoint (method in the answer's
    `method`), and store the verdict: `regression`, `pass` or `insufficient-data`."""
    run = lq.get_run(ctx.store, project, run_id)
    if run.end_ns is None:
        raise lq.RunStillRunning(f"run {run.id} is still running: finish it before comparing")
    base = lq.resolve_baseline(ctx.store, project, run, baseline)
    settings = Settings(threshold, alpha, error_threshold_pp, min_requests)
    return lq.compare_runs(
        ctx.store,
        project,
        run,
        base,
        settings,
        now_ns=ctx.clock(),
        thresholds=parse_thresholds(ctx.config.analyze_thresholds),
    )


@router.get("/loadtests/{run_id}/series", responses=_MISSING)
def series(
    ctx: Ctx,
    project: Project,
    run_id: RunId,
    step: Annotated[
        int | None,
        Query(ge=1, le=86_400, description="Seconds per point. Default: about 60 points."),
    ] = None,
) -> dict[str, Any]:
    """Requests, rps, p50/p95 and errors per step, as offsets from the run's start (two
    runs overlay), overall and per endpoint (`{service: {endpoint: points}}`, the 20
    busiest)."""
    now = ctx.clock()
    run = lq.get_run(ctx.store, project, run_id)
    return lq.run_series(ctx.store, project, run, now, step)


@router.delete(
    "/loadtests/{run_id}",
    status_code=204,
    responses={**_MISSING, **_CHANGES},
    dependencies=_change,
)
def delete_run(ctx: Ctx, project: Project, run_id: RunId) -> Response:
    """Delete the run (its telemetry stays)."""
    if not ctx.store.state.delete_loadtest(project, run_id):
        raise NotFound(f"no load-test run {run_id}")
    return Response(status_code=204)
