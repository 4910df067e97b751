"""Docs are tested: every config key, CLI command and API route is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from heron.cli import build_parser
from heron.server.app import create_app
from heron.server.config import Config

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_key_is_in_the_reference() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for f in dataclasses.fields(Config):
        assert f"| `{f.name}` | `HERON_{f.name.upper()}` |" in doc, f"{f.name} undocumented"


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"`heron {name}" in readme, f"heron {name} missing from README"


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    app = create_app(Config(data_dir=str(tmp_path)))
    routes = [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]
    assert len(routes) >= 5, routes
    for method, path in routes:
        assert f"`{method} {path}`" in doc, f"{method} {path} missing from docs/api.md"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first = readme.split("## ", 2)[1]
    assert re.findall(r"```sh\n(.+?)\n```", first) == ["make demo", "make check"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake check\n" in ci
