"""``heron --version`` prints the installed distribution's version."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from heron.cli import main


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"heron {version('heron')}\n"
