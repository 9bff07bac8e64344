"""
Report tables of the validation benchmarks: the reStructuredText the docs include, plain-text tables and JSON.

The benchmark scripts (``benchmarks/validate_enhance.py``, ``benchmarks/denoise_science.py``, ...) measure with
`sunpy_nn.metrics` and `sunpy_nn.validation` and write what they measured with these functions, so that every
number on a docs page comes from one writer:

* `rst_list_table` and `rst_escape`: a ``list-table`` directive, its cells escaped;
* `text_table`: the same rows for a terminal;
* `target_cell` and `status_text`: a measured value against its target (``MET``, ``NOT MET`` or ``n/a``);
* `format_number` and `format_percent`: numbers that may be missing (``n/a``);
* `jsonable`: numpy scalars to Python numbers, non-finite floats to ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "format_number",
    "format_percent",
    "jsonable",
    "rst_escape",
    "rst_list_table",
    "status_text",
    "target_cell",
    "text_table",
]


def format_percent(x: float | None, digits: int = 2) -> str:
    """
    A fraction as a percentage, or ``"n/a"`` for None.

    Parameters
    ----------
    x : float or None
        The fraction (0.07 for 7 %).
    digits : int
        Decimals of the percentage.

    Returns
    -------
    str
        E.g. ``"7.12 %"``.

    Examples
    --------
    >>> from sunpy_nn.report import format_percent
    >>> format_percent(0.0712), format_percent(0.5, 0), format_percent(None)
    ('7.12 %', '50 %', 'n/a')
    """
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def format_number(x: float | None, spec: str = ".3f") -> str:
    """
    A number with a format ``spec``, or ``"n/a"`` for None and non-finite floats.

    Parameters
    ----------
    x : float or None
        The number.
    spec : str
        A `format` specification (e.g. ``".3f"``, ``"+.2f"``, ``".3g"``).

    Returns
    -------
    str
        The formatted number, or ``"n/a"``.

    Examples
    --------
    >>> from sunpy_nn.report import format_number
    >>> format_number(1.23456), format_number(float("nan")), format_number(-0.5, "+.2f")
    ('1.235', 'n/a', '-0.50')
    """
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def status_text(met: bool | None) -> str:
    """
    ``"MET"``, ``"NOT MET"``, or ``"n/a"`` (not evaluated) for a target.

    Parameters
    ----------
    met : bool or None
        Whether the target is met; None when it was not evaluated (e.g. ``target_cell(...)["met"]``).

    Returns
    -------
    str
        The status as the reports print it.

    Examples
    --------
    >>> from sunpy_nn.report import status_text
    >>> status_text(True), status_text(False), status_text(None)
    ('MET', 'NOT MET', 'n/a')
    """
    return "n/a" if met is None else ("MET" if met else "NOT MET")


def target_cell(value: object, text: Callable[[object], str], met: Callable[[object], bool]) -> dict:
    """
    A measured value against its target: the value, its text and whether it meets the target.

    Parameters
    ----------
    value : object
        The measurement; None when it was not made (no weights, a masked region, ...).
    text : callable
        ``value -> str``, the table's text.
    met : callable
        ``value -> bool``, the target test.

    Returns
    -------
    dict
        ``value``, ``text`` (``"n/a"`` for None) and ``met`` (None for None), as `status_text` reads it.

    Examples
    --------
    >>> from sunpy_nn.report import target_cell
    >>> target_cell(3.4, lambda x: f"{x:+.1f} dB", lambda x: x >= 3)
    {'value': 3.4, 'text': '+3.4 dB', 'met': True}
    >>> target_cell(None, str, bool)
    {'value': None, 'text': 'n/a', 'met': None}
    """
    return {
        "value": value,
        "text": "n/a" if value is None else text(value),
        "met": None if value is None else bool(met(value)),
    }


def rst_escape(text: str) -> str:
    """
    Escape what reStructuredText would read as markup (``|B|`` is a substitution reference, ``_`` a link).

    Parameters
    ----------
    text : str
        Plain text for a table cell or title.

    Returns
    -------
    str
        ``text`` with a backslash before each ``\\``, ``|``, ``*``, backquote and ``_``.

    Examples
    --------
    >>> from sunpy_nn.report import rst_escape
    >>> print(rst_escape("|B| > 100 G, best_rl"))
    \\|B\\| > 100 G, best\\_rl
    """
    for char in ("\\", "|", "*", "`", "_"):
        text = text.replace(char, "\\" + char)
    return text


def rst_list_table(
    title: str, header: Sequence, rows: Sequence[Sequence], *, escape: bool = True, strip: bool = True
) -> list[str]:
    """
    The lines of a reStructuredText ``list-table`` with one header row, and a blank line after it.

    Parameters
    ----------
    title : str
        The table's title (escaped); empty for none.
    header : sequence
        The column titles.
    rows : sequence of sequence
        The cells, converted with `str`.
    escape : bool
        Escape the header and cells with `rst_escape`; False for cells that carry markup.
    strip : bool
        Drop the trailing blank of each line (an empty cell is ``-``); False keeps the dash's trailing space.

    Returns
    -------
    list of str
        The lines, without newlines.

    Examples
    --------
    >>> from sunpy_nn.report import rst_list_table
    >>> print("\\n".join(rst_list_table("Scores", ["method", "PSNR"], [["bicubic", "33.1 dB"]])))
    .. list-table:: Scores
       :header-rows: 1
    <BLANKLINE>
       * - method
         - PSNR
       * - bicubic
         - 33.1 dB
    <BLANKLINE>
    """
    lines = [f".. list-table:: {rst_escape(title)}".rstrip(), "   :header-rows: 1", ""]
    for r in [header, *rows]:
        cells = [rst_escape(str(c)) if escape else str(c) for c in r]
        row = [f"   * - {cells[0]}", *(f"     - {c}" for c in cells[1:])]
        lines.extend(line.rstrip() if strip else line for line in row)
    return [*lines, ""]


def text_table(title: str, header: Sequence, rows: Sequence[Sequence]) -> str:
    """
    A plain-text table for a terminal: a title, the header between rules, the first column left-aligned.

    Parameters
    ----------
    title : str
        The line above the table.
    header : sequence
        The column titles.
    rows : sequence of sequence
        The cells, one sequence per row with as many cells as ``header``, converted with `str`.

    Returns
    -------
    str
        The table's lines joined by newlines, starting with an empty line; the other columns right-aligned.

    Examples
    --------
    >>> from sunpy_nn.report import text_table
    >>> print(text_table("Scores", ["method", "PSNR"], [["bicubic", 33.1], ["RL", 34.25]]))
    <BLANKLINE>
    Scores
    -------  -----
    method    PSNR
    -------  -----
    bicubic   33.1
    RL       34.25
    -------  -----
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["", title, line]
    for k, r in enumerate(cells):
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
        if k == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def jsonable(obj: object, *, drop_private: bool = False) -> object:
    """
    A copy of nested dicts, lists and tuples that `json.dump` writes as strict JSON.

    Numpy scalars become Python numbers, tuples lists, keys strings, and NaN or infinite floats ``None``
    (``null``).

    Parameters
    ----------
    obj : object
        The results: nested dicts, lists and tuples of numbers, strings and numpy scalars.
    drop_private : bool
        Leave out the dict entries whose key starts with ``_`` (images and spectra kept for the figures).

    Returns
    -------
    object
        The copy (dicts, lists, Python numbers, strings, None); other objects (e.g. arrays) are passed through as
        they are.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.report import jsonable
    >>> jsonable({"psnr": np.float32(31.5), "n": np.int64(3), "bad": np.nan, "_image": np.zeros(2)}, drop_private=True)
    {'psnr': 31.5, 'n': 3, 'bad': None}
    """
    if isinstance(obj, dict):
        return {
            str(k): jsonable(v, drop_private=drop_private)
            for k, v in obj.items()
            if not (drop_private and str(k).startswith("_"))
        }
    if isinstance(obj, list | tuple):
        return [jsonable(v, drop_private=drop_private) for v in obj]
    if isinstance(obj, np.floating | float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
