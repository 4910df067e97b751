"""An exception chain as Sentry-shaped ``exception.values``: frames, source context, locals.

Everything here reads the interpreter's own objects (tracebacks, frames, ``linecache``)
and copies what it needs into plain, size-capped data. Nothing is scrubbed here: the
event is scrubbed as a whole just before it leaves the process (``_event.scrub_event``).
"""

from __future__ import annotations

import linecache
import os
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

CONTEXT_LINES = 5
MAX_CHAIN = 10  # exceptions per chain
MAX_FRAMES = 50  # per exception: the innermost ones are kept
MAX_LINE = 300  # characters of one source line
MAX_REPR = 200  # characters of one local variable's value
MAX_VARS = 50  # local variables per frame
MAX_ITEMS = 20  # items per container inside a local variable
MAX_DEPTH = 3  # container nesting inside a local variable

_HERON_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(sorted(os.path.join(os.path.abspath(d), "") for d in dirs))


_LIBRARY_DIRS = _library_dirs()


@dataclass(frozen=True)
class FrameOptions:
    """What to collect of each frame, and which modules are the app's own."""

    include_locals: bool = True
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_in_app(abs_path: str, module: str, options: FrameOptions) -> bool:
    """The app's own code: not a library, the standard library or heron itself.

    ``in_app_include`` wins over everything; ``in_app_exclude`` over the path rules.
    """
    if module and _matches(module, options.in_app_include):
        return True
    if module and _matches(module, options.in_app_exclude):
        return False
    if abs_path.startswith("<frozen "):
        return False
    if "site-packages" in abs_path or "dist-packages" in abs_path:
        return False
    return not abs_path.startswith((*_LIBRARY_DIRS, _HERON_DIR + os.sep))


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, oldest first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        chain.append(current)
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    chain.reverse()
    return chain


def _walk(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _line(line: str) -> str:
    line = line.rstrip("\r\n")
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + "…"


def _source_context(
    abs_path: str, lineno: int, module_globals: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        lines = linecache.getlines(abs_path, dict(module_globals))
    except Exception:  # a loader that fails to give its source: no context, not an error
        return {}
    if not lines or not 0 < lineno <= len(lines):
        return {}
    i = lineno - 1
    return {
        "context_line": _line(lines[i]),
        "pre_context": [_line(x) for x in lines[max(0, i - CONTEXT_LINES) : i]],
        "post_context": [_line(x) for x in lines[i + 1 : i + 1 + CONTEXT_LINES]],
    }


def safe_value(value: object, depth: int = 0) -> object:
    """A JSON-able, size-capped copy of ``value``; containers keep their keys for scrubbing."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_REPR else value[:MAX_REPR] + "…"
    if depth < MAX_DEPTH:
        if isinstance(value, dict):
            items = list(value.items())[:MAX_ITEMS]
            return {_short(k): safe_value(v, depth + 1) for k, v in items}
        if isinstance(value, list | tuple | set | frozenset):
            return [safe_value(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    return _short(value)


def _short(value: object) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # the app's __repr__ is broken: say so instead of failing
        return "<unrepresentable>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "…"


def frame_locals(frame: FrameType) -> dict[str, object] | None:
    """The frame's local variables, size-capped; None for module-level code (its "locals"
    are the module's globals: imports and definitions, noise in an event)."""
    if frame.f_locals is frame.f_globals:
        return None
    names = [(k, v) for k, v in frame.f_locals.items() if not k.startswith("__")][:MAX_VARS]
    return {name: safe_value(value) for name, value in names}


def build_frame(frame: FrameType, lineno: int, options: FrameOptions) -> dict[str, Any]:
    code = frame.f_code
    abs_path = (
        os.path.abspath(code.co_filename) if code.co_filename[:1] != "<" else code.co_filename
    )
    module = str(frame.f_globals.get("__name__") or "")
    in_app = is_in_app(abs_path, module, options)
    out: dict[str, Any] = {
        "filename": _relative(abs_path, module),
        "abs_path": abs_path,
        "module": module,
        "function": code.co_name,
        "lineno": lineno,
        "in_app": in_app,
    }
    out.update(_source_context(code.co_filename, lineno, frame.f_globals))
    variables = frame_locals(frame) if options.include_locals and in_app else None
    if variables is not None:
        out["vars"] = variables
    return out


def _relative(abs_path: str, module: str) -> str:
    """The path from the package root (``shop/views.py``), as Sentry shows it."""
    if not module or abs_path.startswith("<"):
        return abs_path
    depth = module.count(".") + (1 if abs_path.endswith("__init__.py") else 0)
    parts = abs_path.split(os.sep)
    return os.sep.join(parts[-(depth + 1) :]) if len(parts) > depth else abs_path


def stacktrace(tb: TracebackType | None, options: FrameOptions) -> list[dict[str, Any]]:
    """Frames of ``tb``, caller first; only the innermost :data:`MAX_FRAMES` are kept."""
    frames = list(_walk(tb))[-MAX_FRAMES:]
    return [build_frame(frame, lineno, options) for frame, lineno in frames]


def exception_values(
    exc: BaseException, options: FrameOptions, mechanism: dict[str, Any]
) -> list[dict[str, Any]]:
    """The chain of ``exc``, oldest first, each with its frames; ``exc`` carries ``mechanism``."""
    values = []
    for item in exception_chain(exc):
        cls = type(item)
        values.append(
            {
                "type": cls.__qualname__,
                "value": _exception_text(item),
                "module": cls.__module__,
                "mechanism": mechanism if item is exc else {**mechanism, "type": "chained"},
                "stacktrace": {"frames": stacktrace(item.__traceback__, options)},
            }
        )
    return values


def _exception_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<unprintable>"
    return text if len(text) <= 8192 else text[:8192] + "…"
