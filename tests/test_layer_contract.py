"""
The layers contract of ``sunpy_nn`` (issue #15, ``DESIGN.md``): a module imports only from the rows below its own.

The rows live in one place, ``[tool.importlinter]`` in ``pyproject.toml``, which CI checks with import-linter
(``lint-imports`` in ``.ci/run`` and ``tox -e codestyle``). Top to bottom (the design's ``io | baselines | training |
batch`` row is split where its members depend on each other: training builds on the data generators, and the weight
registry reads Keras files through io)::

    cli : demo : parallel (a backwards-compatible re-export)
    enhance | denoise
    baselines | training | batch
    data
    io
    metrics : error_bars : noise : psf : cube : header : nn : utils : validation : validation_denoise :
        validation_maps : validation_report : report

``|`` siblings may not import each other; ``:`` siblings may. Inside one top-level component (``sunpy_nn.nn.*``,
``sunpy_nn.training.*``, ...) modules may import each other (cycles are refused by ``test_layers.py``). Every import
counts, lazy ones inside functions included. The bare package root (``from sunpy_nn import __version__``) is always
loaded first by Python and is not an upward import.

This file checks the same rows twice, with its own :mod:`ast` reader and with import-linter, and shows each of them
failing on a module that breaks the contract on purpose.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .test_layers import MODULES, PACKAGE, _imports, _module_name

try:
    import tomllib
except ImportError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

PYPROJECT = PACKAGE.parent / "pyproject.toml"
CONTRACT = next(
    c for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"] if c["id"] == "layers"
)


def _parse_row(row: str) -> tuple[tuple[str, ...], bool]:
    """One import-linter layer string -> (module names, whether its siblings are independent)."""
    names = tuple("sunpy_nn." + n.strip() for n in re.split(r"[|:]", row))
    return names, "|" in row


ROWS = tuple(_parse_row(row)[0] for row in CONTRACT["layers"])
INDEPENDENT = tuple(_parse_row(row)[1] for row in CONTRACT["layers"])
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
        if row is None:
            continue
        for target in sorted(imports):
            if not target.startswith("sunpy_nn.") or target not in modules:
                continue  # third-party, the bare package root, or a name imported from a module
            t_row = _row(target)
            if t_row is None or _component(target) == _component(module):
                continue
            if t_row > row or (t_row == row and not INDEPENDENT[row]):
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


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run import-linter's ``lint-imports`` on the ``pyproject.toml`` in ``cwd``, importing packages from there."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "pyproject.toml"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_linter_keeps_the_contract():
    result = _lint_imports(PYPROJECT.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def _fake_package(tmp_path: Path) -> Path:
    """An empty package with every module the contract names, next to a copy of the real contract."""
    root = tmp_path / "sunpy_nn"
    root.mkdir()
    for path in ("__init__.py", "_version.py", *(name.split(".", 1)[1] + ".py" for row in ROWS for name in row)):
        (root / path).touch()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    return root


def test_import_linter_fails_on_an_upward_import(tmp_path):
    root = _fake_package(tmp_path)
    assert _lint_imports(tmp_path).returncode == 0  # the empty package keeps the contract
    # Broken on purpose: the CRISP reader's row (io) lazily imports the denoiser, two rows up.
    (root / "io.py").write_text(
        textwrap.dedent("""
        def read():
            from sunpy_nn.denoise import Denoiser
            return Denoiser
    """)
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "sunpy_nn.io is not allowed to import sunpy_nn.denoise" in result.stdout


def test_import_linter_fails_on_a_sibling_import(tmp_path):
    root = _fake_package(tmp_path)
    (root / "enhance.py").write_text("import sunpy_nn.denoise\n")  # enhance | denoise are independent
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "sunpy_nn.enhance is not allowed to import sunpy_nn.denoise" in result.stdout


def test_import_linter_fails_on_a_module_outside_the_contract(tmp_path):
    root = _fake_package(tmp_path)
    (root / "newroom.py").touch()  # exhaustive: a new top-level module must be given a row
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "sunpy_nn.newroom" in result.stdout


def test_no_module_over_600_lines():
    # One room, one job (issue #15): a module that grows past this does several and should be split.
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, f"modules over 600 lines: {long}"
