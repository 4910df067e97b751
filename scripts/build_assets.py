#!/usr/bin/env python3
"""Build the web UI's third-party browser assets from npm (nothing third-party is committed).

Runs ``npm ci`` in ``src/heron/server/ui`` (exact versions from ``package-lock.json``,
integrity-checked) and copies the files the pages load into
``src/heron/server/ui/static/vendor/`` (gitignored), with the packages' licences. The UI
then works with no internet access: nothing is loaded from a CDN.

It also runs ``npm ci`` in ``browser/`` (the RUM browser SDK, with web-vitals) and bundles
it with esbuild into the same directory: ``rum.js`` (script tag, global ``heron``),
``rum.mjs`` (ESM) and ``rum-react.mjs`` (the React helper, importing ``./rum.mjs``),
served by every role at ``/rum.js``, ``/rum.mjs`` and ``/rum-react.mjs``.

    python scripts/build_assets.py           # npm ci + copy
    python scripts/build_assets.py --check   # exit 1 unless the vendor files are present

The wheel build runs it too (``hatch_build.py``) when the vendor files are missing, so a
wheel or sdist always ships them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "src" / "heron" / "server" / "ui"
VENDOR = UI / "static" / "vendor"
BROWSER = ROOT / "browser"
# (file in node_modules, name under static/vendor)
FILES = [
    ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ("uplot/LICENSE", "uPlot.LICENSE.txt"),
    ("swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-bundle.js"),
    ("swagger-ui-dist/swagger-ui.css", "swagger-ui.css"),
    ("swagger-ui-dist/LICENSE", "swagger-ui.LICENSE.txt"),
    ("swagger-ui-dist/NOTICE", "swagger-ui.NOTICE.txt"),
]
# the browser SDK's bundles (browser/build.mjs) and the licence of what they bundle
SDK_BUNDLES = ["rum.js", "rum.mjs", "rum-react.mjs"]
SDK_FILES = [("web-vitals/LICENSE", "web-vitals.LICENSE.txt")]


class AssetBuildError(RuntimeError):
    """The assets cannot be built here; the message says what to install."""


def missing() -> list[str]:
    names = [name for _, name in FILES + SDK_FILES] + SDK_BUNDLES
    return [name for name in names if not (VENDOR / name).is_file()]


def build() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetBuildError(
            "build_assets: npm not found; the web UI's chart library and API docs are built "
            "from npm. Install Node.js 18+ (it provides npm) and retry"
        )
    for directory in (UI, BROWSER):
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=directory,
            check=True,
        )
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, name in FILES:
        shutil.copyfile(UI / "node_modules" / source, VENDOR / name)
    build_sdk(npm)
    count = len(FILES) + len(SDK_FILES) + len(SDK_BUNDLES)
    print(f"build_assets: {count} files in {VENDOR.relative_to(ROOT)}")


def build_sdk(npm: str) -> None:
    """Bundle the RUM SDK (``browser/build.mjs``, esbuild from its lockfile) into VENDOR."""
    node = shutil.which("node") or str(Path(npm).with_name("node"))
    subprocess.run([node, "build.mjs", str(VENDOR)], cwd=BROWSER, check=True)
    for source, name in SDK_FILES:
        shutil.copyfile(BROWSER / "node_modules" / source, VENDOR / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only check the files exist")
    args = parser.parse_args()
    if args.check:
        gone = missing()
        if gone:
            print(f"build_assets: missing {', '.join(gone)}; run scripts/build_assets.py")
            return 1
        return 0
    try:
        build()
    except AssetBuildError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
