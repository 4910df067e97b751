"""Loaded at interpreter startup under ``heron run``: starts the agent from the environment.

It then runs the ``sitecustomize`` this one shadows, if any (a distribution's or a
virtualenv's), so that ``heron run`` changes nothing else about the interpreter.
"""

from __future__ import annotations


def _start_heron() -> None:
    import sys

    try:
        import heron
    except ImportError as e:  # the program must start even if the agent cannot
        print(
            f"heron run: the agent did not start: {sys.executable} cannot import heron "
            f"({e}); is heron installed for this interpreter?",
            file=sys.stderr,
        )
        return
    heron.init()  # never raises


def _run_shadowed_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_start_heron()
_run_shadowed_sitecustomize()
