"""Pin the public API of ``heron``: nothing leaks out, nothing vanishes (httpx's test)."""

from __future__ import annotations

import heron

PUBLIC = {
    "AgentStats",
    "__version__",
    "capture_exception",
    "capture_message",
    "counter",
    "flush",
    "gauge",
    "histogram",
    "init",
    "last_event_id",
    "metrics_app",
    "record_metric",
    "set_tag",
    "set_user",
    "shutdown",
    "span",
    "stats",
    "traced",
    "traceparent_meta",
    "up_down_counter",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(heron.__all__) == PUBLIC
    assert len(heron.__all__) == len(PUBLIC)


def test_every_exported_name_exists() -> None:
    for name in heron.__all__:
        assert hasattr(heron, name), name


def test_no_other_public_names() -> None:
    # Submodules (heron.agent, heron.cli, ...) appear once imported; they are not API.
    public = {
        name
        for name in vars(heron)
        if not name.startswith("_") and not isinstance(getattr(heron, name), type(heron))
    }
    assert public <= PUBLIC
