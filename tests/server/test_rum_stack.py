"""JavaScript stack parsing (ingest/rum_stack.py): Chrome, Firefox and Safari stacks."""

from __future__ import annotations

from heron.server.ingest.rum_stack import MAX_FRAMES, parse_stack

ORIGIN = "https://shop.example"

CHROME = """TypeError: Cannot read properties of undefined (reading 'price')
    at addToCart (https://shop.example/static/app.js:120:17)
    at HTMLButtonElement.<anonymous> (https://shop.example/static/app.js:88:9)
    at new Cart (https://cdn.example/vendor.js:3:1044)
    at async checkout (https://shop.example/static/app.js:200:3)
    at https://shop.example/static/boot.js:5:2"""

FIREFOX = """addToCart@https://shop.example/static/app.js:120:17
onClick/<@https://shop.example/static/app.js:88:9
@https://cdn.example/vendor.js:3:1044
"""

SAFARI = """addToCart@https://shop.example/static/app.js:120:17
onClick@https://shop.example/static/app.js:88:9
[native code]
global code@https://shop.example/products/42:14:5"""


def simple(frames: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [
        (f["function"], f["filename"], f.get("lineno"), f.get("colno"), f["in_app"]) for f in frames
    ]


def test_chrome_stack_caller_first() -> None:
    assert simple(parse_stack(CHROME, ORIGIN)) == [
        ("?", "/static/boot.js", 5, 2, True),
        ("checkout", "/static/app.js", 200, 3, True),
        ("Cart", "/vendor.js", 3, 1044, False),
        ("HTMLButtonElement.<anonymous>", "/static/app.js", 88, 9, True),
        ("addToCart", "/static/app.js", 120, 17, True),
    ]
    assert parse_stack(CHROME, ORIGIN)[-1]["abs_path"] == "https://shop.example/static/app.js"


def test_firefox_stack() -> None:
    assert simple(parse_stack(FIREFOX, ORIGIN)) == [
        ("?", "/vendor.js", 3, 1044, False),
        ("onClick/<", "/static/app.js", 88, 9, True),
        ("addToCart", "/static/app.js", 120, 17, True),
    ]


def test_safari_stack_skips_native_code() -> None:
    assert simple(parse_stack(SAFARI, ORIGIN)) == [
        ("global code", "/products/42", 14, 5, True),
        ("onClick", "/static/app.js", 88, 9, True),
        ("addToCart", "/static/app.js", 120, 17, True),
    ]


def test_chrome_eval_and_anonymous_locations() -> None:
    stack = (
        "Error: boom\n"
        "    at eval (eval at run (https://shop.example/a.js:1:2), <anonymous>:3:4)\n"
        "    at <anonymous>:1:1"
    )
    frames = parse_stack(stack, ORIGIN)
    assert [(f["function"], f["abs_path"], f.get("lineno")) for f in frames] == [
        ("?", "<anonymous>", 1),
        ("eval", "<anonymous>", 3),
    ]


def test_no_origin_means_nothing_in_app_and_junk_is_skipped() -> None:
    assert all(not f["in_app"] for f in parse_stack(CHROME))
    assert parse_stack("just a message, no frames") == []
    assert parse_stack("") == []


def test_module_leaves_out_build_hashes() -> None:
    stack = (
        "Error: x\n"
        "    at a (https://shop.example/static/app.3f2a1b9c.js:1:2)\n"
        "    at b (https://shop.example/static/chunk-5e1d2c3b.min.js:1:2)\n"
        "    at c (https://shop.example/static/vendor.js?v=12:1:2)"
    )
    assert [f["module"] for f in parse_stack(stack)] == ["vendor", "chunk.min", "app"]


def test_bounded() -> None:
    stack = "\n".join(f"    at f{i} (https://x.example/a.js:{i}:1)" for i in range(500))
    frames = parse_stack(stack)
    assert len(frames) == MAX_FRAMES
    assert frames[-1]["function"] == "f0"  # the callee (first line) is kept
