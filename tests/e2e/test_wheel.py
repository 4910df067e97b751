"""The product as a user gets it: built from a clean copy of the sources, installed from the
wheel into a fresh virtualenv far from the checkout, then ``heron serve`` run from there.

The copy holds only files git tracks (or would), so the npm-built assets are missing and
the build hook must make them. Every page reachable from the overview is fetched signed
in, with every script and stylesheet it links: a wheel without the chart library fails
here. Building or installing must work, so any failure fails the test (never a skip).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.e2e.test_auth_e2e import sign_in
from tests.ui import seed as seed_data
from tests.ui.browser.conftest import post_traces

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENDOR = "heron/server/ui/static/vendor/"
CHART_JS = VENDOR + "uPlot.iife.min.js"
PASSWORD = "wheel-admin-0123"
ASSET = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+)"')
LINK = re.compile(r'<a [^>]*href="(/[^"]*)"')
# Every page of the UI; ids and query strings are reduced to these shapes.
PAGES = {
    "/",
    "/service",
    "/endpoint",
    "/traces",
    "/traces/{id}",
    "/map",
    "/db",
    "/db/query",
    "/db/slow",
    "/n-plus-one",
    "/issues",
    "/issues/{id}",
    "/logs",
    "/docs",  # Swagger UI: not linked from the pages, so the crawl starts there too
}


def run(cmd: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        pytest.fail(f"{cmd} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r  # type: ignore[no-any-return]


def clean_copy(dest: Path) -> Path:
    """The files of a fresh clone (tracked, or new and not ignored): no built assets."""
    names = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    for name in filter(None, names.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    assert not (dest / "src" / VENDOR).exists()
    return dest


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` (sdist, then the wheel from the sdist) of a clean copy."""
    source = clean_copy(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, source])
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its server extra; returns its bin/."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / "bin"
    wheel = next(dist.glob("heron-*.whl"))
    run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-compile", f"{wheel}[server]"],
        env=_env(),
    )
    return bin_dir


def _env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def test_sdist_and_wheel_ship_the_built_assets_and_the_lockfile(dist: Path) -> None:
    wheel = zipfile.ZipFile(next(dist.glob("heron-*.whl")))
    shipped = set(wheel.namelist())
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "swagger-ui-bundle.js", "swagger-ui.css"):
        assert VENDOR + name in shipped, sorted(shipped)
    assert len(wheel.read(CHART_JS)) > 10_000
    for name in ("rum.js", "rum.mjs", "rum-react.mjs", "web-vitals.LICENSE.txt"):
        assert VENDOR + name in shipped, sorted(shipped)  # the RUM browser SDK, bundled
    assert not any(n.startswith("browser/") for n in shipped)
    assert not any("node_modules" in n for n in shipped)
    with tarfile.open(next(dist.glob("heron-*.tar.gz"))) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for name in ("package.json", "package-lock.json", "static/vendor/uPlot.iife.min.js"):
        assert f"src/heron/server/ui/{name}" in names, sorted(names)
    assert "hatch_build.py" in names and "scripts/build_assets.py" in names
    for name in ("package.json", "package-lock.json", "build.mjs", "src/index.js"):
        assert f"browser/{name}" in names, sorted(names)  # the SDK's sources, to rebuild it
    assert not any("node_modules" in n for n in names)


def test_without_npm_the_build_fails_and_says_why(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "checkout")
    no_npm = tmp_path / "bin"
    no_npm.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", tmp_path / "dist", source],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(PATH=str(no_npm)),
    )
    assert r.returncode != 0
    assert "npm not found" in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert not list((tmp_path / "dist").glob("heron-*"))


def test_the_installed_wheel_serves_every_page_with_its_charts(
    installed: Path, tmp_path: Path
) -> None:
    code = "import heron; print(heron.__file__)"
    where = run([installed / "python", "-c", code], cwd=tmp_path, env=_env())
    assert where.stdout.startswith(str(installed.parent)), where.stdout  # not the checkout
    version = run([installed / "heron", "--version"], cwd=tmp_path, env=_env())
    assert version.stdout.strip() == f"heron {_wheel_version(installed)}"
    h = make_heron(tmp_path, HERON_ADMIN_PASSWORD=PASSWORD)
    h.heron, h.cwd, h.env = (str(installed / "heron"),), tmp_path, _env(**_heron_env(h))
    h.start()
    try:
        post_traces(h, seed_data.build(time.time_ns(), traces=40).requests())
        h.wait_for("/api/v1/issues", lambda body: len(body["issues"]) > 0)
        # The analysis job writes the query rollups within ~10 s of ingest.
        h.wait_for("/api/v1/db/queries", lambda body: len(body["queries"]) > 0)
        with httpx.Client(base_url=h.url, timeout=30) as browser:
            assert browser.get("/login").status_code == 200
            sign_in(browser, "admin", PASSWORD)
            seen, assets = crawl(browser)
            assert seen >= PAGES, sorted(PAGES - seen)
            for vendored in ("uPlot.iife.min.js", "uPlot.min.css", "swagger-ui-bundle.js"):
                assert any(a.startswith(f"/static/vendor/{vendored}?v=") for a in assets)
            for asset in assets:
                r = browser.get(asset)
                assert r.status_code == 200 and len(r.content) > 100, asset
        sdk = httpx.get(f"{h.url}/rum.js", timeout=30)  # public: no session
        assert sdk.status_code == 200 and len(sdk.content) > 10_000
        assert sdk.headers["content-type"].startswith("text/javascript")
    finally:
        h.stop()


def _heron_env(h: HeronProcess) -> dict[str, str]:
    return {k: v for k, v in h.env.items() if k.startswith("HERON_")}


def _wheel_version(bin_dir: Path) -> str:
    code = "import heron._version as v; print(v.__version__)"
    r = run([bin_dir / "python", "-c", code], env=_env())
    return r.stdout.strip()


def crawl(browser: httpx.Client, per_shape: int = 2) -> tuple[set[str], set[str]]:
    """Fetch pages breadth-first from ``/`` and ``/docs``, at most ``per_shape`` of each
    shape; each must answer 200 with its charts available. Returns the shapes seen and the
    assets the pages link."""
    queue, fetched = deque(["/", "/docs"]), set()
    shapes: dict[str, int] = {}
    assets: set[str] = set()
    while queue:
        url = queue.popleft()
        shape = _shape(url)
        if url in fetched or shapes.get(shape, 0) >= per_shape or shape == "/logout":
            continue
        fetched.add(url)
        shapes[shape] = shapes.get(shape, 0) + 1
        r = browser.get(url, headers={"Accept": "text/html"})
        assert r.status_code == 200, (url, r.status_code, r.text[:500])
        assert "Charts are unavailable" not in r.text, url
        assets.update(html.unescape(a) for a in ASSET.findall(r.text))
        links = (html.unescape(u) for u in LINK.findall(r.text))
        queue.extend(u for u in links if not u.startswith("/static/"))
    return set(shapes), assets


def _shape(url: str) -> str:
    path = urlsplit(url).path
    return re.sub(r"^/(traces|issues)/[^/]+$", r"/\1/{id}", path)
