"""
Every figure of merit on a guide page comes from a file that code wrote (issue #17).

A guide page quotes a measured figure through a substitution (``|val_umbra_v2|``) that
``docs/_ext/generated_pages.py`` fills at build time from a benchmark's JSON, or by including a generated table. A
number with a unit that stays typed in a page's prose must be a setting, a definition or a threshold, not a
measurement, and the page says so in an RST comment, one per value, that the reader of the source sees next to it::

    .. not-measured: 128 x -- the size of the synthetic cube (a setting)

This test finds every number with a figure-of-merit unit in the prose of ``docs/guide/*.rst`` (outside code blocks,
directives, inline literals and math) and fails on any that the page does not declare, and on declarations that
no longer match anything (so the list cannot hide a figure that was once a setting).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide"

# A number followed by a unit that figures of merit use: decibels, percentages, ratios, times, rates, memory,
# intensities and field strengths.
FIGURE = re.compile(
    r"(?<![\w.|])[+-]?\d+(?:[.,]\d+)*(?:e[+-]?\d+)?(?:-\d+(?:\.\d+)?)?\s?"
    r"(?:dB|%|x\b|s\b|ms\b|min\b|minutes\b|hours?\b|GFLOP/s|MiB|MB|GB|GiB|I/Ic|G\b|kG\b|patches/s|Mpix/s|maps/minute)"
)
BLOCK_START = re.compile(
    r"\s*\.\. (code-block|code|literalinclude|include|image|figure|math|csv-table|list-table|table|raw|plot)::"
)
DECLARED = re.compile(r"^\.\. not-measured: (?P<value>.+?) -- (?P<why>.+)$")


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the prose lines: no literal blocks, directive bodies, comments or inline code/math."""
    lines, out, block_indent = text.splitlines(), [], None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        if BLOCK_START.match(line) or stripped.endswith("::") or stripped.startswith(".. "):
            # a directive, a literal block that follows "::", or a comment: skip its indented body
            block_indent = indent
            if stripped.endswith("::") and not stripped.startswith(".."):
                out.append((number, line[: line.rindex("::")]))
            continue
        line = re.sub(r"``[^`]*``", "", line)
        line = re.sub(r":math:`[^`]*`", "", line)
        out.append((number, line))
    return out


def _figures(text: str) -> list[tuple[int, str]]:
    return [(n, m.group(0).strip()) for n, line in _prose(text) for m in FIGURE.finditer(line)]


def _declared(text: str) -> dict[str, str]:
    return {m["value"].strip(): m["why"] for line in text.splitlines() if (m := DECLARED.match(line.strip()))}


PAGES = sorted(GUIDE.glob("*.rst"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_hand_typed_figure_of_merit(page: Path) -> None:
    text = page.read_text()
    declared = _declared(text)
    typed = [(n, value) for n, value in _figures(text) if value not in declared]
    assert not typed, (
        f"{page.name} types figures that no generated file supplies (line, value): {typed}. Quote a measured figure "
        "through a substitution of docs/_ext/generated_pages.py, or, if it is a setting or a definition, declare it "
        "with a comment '.. not-measured: VALUE -- why'."
    )
    used = {value for _, value in _figures(text)}
    stale = sorted(set(declared) - used)
    assert not stale, f"{page.name} declares values that its prose no longer uses: {stale}"


def test_detector_finds_typed_figures() -> None:
    # the check itself: a typed gain is found, a substitution, literal or math is not, and a declaration covers
    text = (
        "Enhance gains 5.4 dB over bicubic and |val_gain| over RL.\n"
        "Use ``patch=52 x 52`` and :math:`10\\,\\%` here.\n\n"
        ".. code-block:: python\n\n    x = 3 %\n\n"
        "The cube is 128 x 128.\n\n"
        ".. not-measured: 128 x -- the size of the synthetic cube\n"
    )
    assert [v for _, v in _figures(text)] == ["5.4 dB", "128 x"]
    assert _declared(text) == {"128 x": "the size of the synthetic cube"}
