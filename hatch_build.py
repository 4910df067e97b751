"""Hatchling build hook: every sdist and wheel ships the web UI's npm-built assets.

The assets (the chart library, Swagger UI, the RUM browser SDK bundles) are gitignored and
built from ``src/heron/server/ui/package-lock.json`` and ``browser/package-lock.json`` by
``scripts/build_assets.py``. When they are
missing, this hook builds them before the files are collected; without npm the build
fails with a message saying so, rather than producing a wheel whose charts are blank.
An editable install is left alone: it serves the checkout's files, which
``make install`` builds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _load_build_assets(root: Path) -> ModuleType:
    path = root / "scripts" / "build_assets.py"
    spec = importlib.util.spec_from_file_location("heron_build_assets", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class UIAssetsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        assets = _load_build_assets(Path(self.root))
        if assets.missing():
            self.app.display_info("building the web UI's assets from npm (scripts/build_assets.py)")
            assets.build()
