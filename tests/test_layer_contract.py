"""
The layers contract of ``sunpy_nn`` (issue #15, ``DESIGN.md``): a module imports only from the rows below its own.

Rows, top to bottom (the design's ``io | baselines | training | batch`` row is split where its members depend on
each other: training builds on the data generators, and the weight registry reads Keras files through io)::

    cli, demo, parallel (a backwards-compatible re-export), the package root (lazy public API)
    enhance, denoise
    baselines, training, batch
    data
    io
    metrics, psf, cube, header, nn, utils, validation, validation_report, report

Inside one top-level component (``sunpy_nn.nn.*``, ``sunpy_nn.training.*``, ...) and inside the bottom row,
modules may import each other (cycles are refused by ``test_layers.py``). Every import counts, lazy ones inside
functions included. The bare package root (``from sunpy_nn import __version__``) is always loaded first by Python
and is not an upward import.
"""

from __future__ import annotations

import pytest

from .test_layers import MODULES, _imports, _module_name

ROWS = (
    ("sunpy_nn.cli", "sunpy_nn.demo", "sunpy_nn.parallel", "sunpy_nn.__main__"),
    ("sunpy_nn.enhance", "sunpy_nn.denoise"),
    ("sunpy_nn.baselines", "sunpy_nn.training", "sunpy_nn.batch"),
    ("sunpy_nn.data",),
    ("sunpy_nn.io",),
    (
        "sunpy_nn.metrics",
        "sunpy_nn.psf",
        "sunpy_nn.cube",
        "sunpy_nn.header",
        "sunpy_nn.nn",
        "sunpy_nn.utils",
        # the validation science and report tables of the benchmarks and docs: numpy, scipy, metrics and psf only
        "sunpy_nn.validation",
        "sunpy_nn.validation_report",
        "sunpy_nn.report",
    ),
)
BOTTOM = len(ROWS) - 1


def _component(module: str) -> str | None:
    """The row entry a module belongs to (``sunpy_nn.nn.unet`` -> ``sunpy_nn.nn``), or None (root, version)."""
    for row in ROWS:
        for entry in row:
            if module == entry or module.startswith(entry + "."):
                return entry
    return None


def _row(module: str) -> int | None:
    entry = _component(module)
    return None if entry is None else next(i for i, row in enumerate(ROWS) if entry in row)


def violations(modules: dict[str, set[str]]) -> list[str]:
    """Every import of a sunpy_nn module that does not go strictly down the rows (or stays in its component)."""
    found = []
    for module, imports in modules.items():
        row = _row(module)
        if row is None or row == 0:
            continue
        for target in sorted(imports):
            if not target.startswith("sunpy_nn.") or target not in modules:
                continue  # third-party, the bare package root, or a name imported from a module
            t_row = _row(target)
            if t_row is None or _component(target) == _component(module):
                continue
            if t_row > row or (t_row == row == BOTTOM):
                continue
            found.append(f"{module} imports {target}")
    return found


def test_every_module_has_a_row():
    unplaced = [m for m in MODULES if _row(m) is None and m not in ("sunpy_nn", "sunpy_nn._version")]
    assert not unplaced


def test_the_package_keeps_its_layers():
    assert violations(MODULES) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "io/reader.py",
            "def f():\n    from sunpy_nn.denoise import Denoiser\n",
            "sunpy_nn.io.reader imports sunpy_nn.denoise",
        ),
        ("psf.py", "import sunpy_nn.training\n", "sunpy_nn.psf imports sunpy_nn.training"),
        ("enhance.py", "from sunpy_nn import denoise\n", "sunpy_nn.enhance imports sunpy_nn.denoise"),
        ("batch.py", "from .enhance import enhance_map\n", "sunpy_nn.batch imports sunpy_nn.enhance"),
    ],
)
def test_the_contract_fails_on_an_upward_import(tmp_path, path, source, expected):
    # Each case writes one module that breaks the contract on purpose, next to the modules it names.
    root = tmp_path / "sunpy_nn"
    (root / "io").mkdir(parents=True)
    for name in ("denoise.py", "training.py", "enhance.py", "psf.py", "batch.py", "io/__init__.py"):
        (root / name).touch()
    (root / path).write_text(source)
    modules = {}
    for p in root.rglob("*.py"):
        modules[_module_name(p, root)] = _imports(p, root)
    assert expected in violations(modules)
