"""``heron run -- <command>``: run a program with the agent, without changing its code.

Like ``opentelemetry-instrument``, it prepends a directory holding only a
``sitecustomize.py`` to ``PYTHONPATH`` and then replaces itself with the command. Every
Python interpreter started from there (the program, and the processes it starts) runs
``heron.init()`` at startup, configured by ``HERON_*`` / ``OTEL_*`` variables, before the
program imports anything. This module must stay cheap: no OpenTelemetry import here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "_bootstrap")
USAGE = "usage: heron run -- <program> [args...]   (configure with HERON_* / OTEL_* variables)"


def with_bootstrap(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with heron's sitecustomize directory first on ``PYTHONPATH``."""
    env = dict(environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *paths])
    return env


def run_command(command: list[str], environ: MutableMapping[str, str] | None = None) -> int:
    """Exec ``command`` with the agent bootstrapped; returns only if it cannot start."""
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(USAGE, file=sys.stderr)
        return 2
    executable = shutil.which(command[0])
    if executable is None:
        print(f"heron run: command not found: {command[0]}", file=sys.stderr)
        return 127
    env = with_bootstrap(os.environ if environ is None else environ)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # no exec on Windows: run it as a child and pass its exit code on
        return subprocess.call([executable, *command[1:]], env=env)
    try:
        os.execve(executable, [command[0], *command[1:]], env)
    except OSError as e:
        print(f"heron run: cannot run {command[0]}: {e}", file=sys.stderr)
        return 126
    return 0  # unreachable: execve does not return
