"""
The package's layers (issue #15): which module may import which, read from the source with `ast`.

Every import counts, also those inside functions (the lazy ones), ``from sunpy_nn import denoise`` and relative
imports. The old import paths of what moved into `sunpy_nn.cube`, `sunpy_nn.nn.device`, `sunpy_nn.nn.lazy`,
`sunpy_nn.psf`, `sunpy_nn.batch`, `sunpy_nn.header`, `sunpy_nn.metrics` and `sunpy_nn.training.noise2noise` still
give the same objects.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sunpy_nn"


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as absolute dotted names (``from a import b``: a and a.b)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # the name may be a submodule
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _offending(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in MODULES[module] if any(i == f or i.startswith(f + ".") for f in forbidden))


def test_every_module_was_parsed():
    for name in (
        "sunpy_nn.cube",
        "sunpy_nn.psf",
        "sunpy_nn.nn.device",
        "sunpy_nn.nn.lazy",
        "sunpy_nn.io.crisp",
        "sunpy_nn.metrics",
        "sunpy_nn.training.noise2noise",
    ):
        assert name in MODULES
    for name in ("sunpy_nn.batch", "sunpy_nn.header", "sunpy_nn.parallel", "sunpy_nn.enhance", "sunpy_nn.baselines"):
        assert name in MODULES


def test_the_import_reader_sees_lazy_relative_and_from_package_imports(tmp_path):
    root = tmp_path / "sunpy_nn"
    (root / "io").mkdir(parents=True)
    src = root / "io" / "mod.py"
    src.write_text(
        "import importlib\n"
        "def f():\n    from sunpy_nn.denoise import find_axes\n"
        "def g():\n    return importlib.import_module('sunpy_nn.parallel')\n"
        "from sunpy_nn import enhance\nfrom ..training import x\nfrom . import keras\n"
    )
    found = _imports(src, root)
    expected = {"sunpy_nn.denoise", "sunpy_nn.parallel", "sunpy_nn.enhance", "sunpy_nn.training", "sunpy_nn.io.keras"}
    assert expected <= found


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("sunpy_nn.io")))
def test_io_imports_neither_denoise_nor_enhance(module):
    assert _offending(module, ("sunpy_nn.denoise", "sunpy_nn.enhance")) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("sunpy_nn.training")))
def test_training_imports_neither_denoise_nor_enhance(module):
    # training sits below denoise and enhance: Denoiser.fit calls train_noise2noise, never the other way
    assert _offending(module, ("sunpy_nn.denoise", "sunpy_nn.enhance")) == []


def test_metrics_imports_nothing_above_it():
    above = ("sunpy_nn.denoise", "sunpy_nn.enhance", "sunpy_nn.training", "sunpy_nn.io")
    assert _offending("sunpy_nn.metrics", above) == []


def test_runner_and_optimize_do_not_import_each_other():
    # The runner uses the optimised networks (prepare_model); the optimiser must not come back to the runner.
    assert _offending("sunpy_nn.nn.optimize", ("sunpy_nn.nn.runner",)) == []


def test_no_import_cycle_inside_nn():
    modules = [m for m in MODULES if m.startswith("sunpy_nn.nn.")]
    graph = {m: {n for n in modules if n != m and _offending(m, (n,))} for m in modules}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph[start])

    assert [m for m in modules if reaches(m, m)] == []


@pytest.mark.parametrize("module", ["sunpy_nn.cube", "sunpy_nn.psf", "sunpy_nn.nn.device", "sunpy_nn.nn.lazy"])
def test_bottom_layer_imports_nothing_above_it(module):
    above = ("sunpy_nn.denoise", "sunpy_nn.enhance", "sunpy_nn.io", "sunpy_nn.training", "sunpy_nn.parallel")
    assert _offending(module, above) == []


def test_batch_imports_nothing_of_enhance_or_denoise():
    # the runner is handed its task: the Enhance task lives in enhance, which imports the runner, not the reverse
    assert _offending("sunpy_nn.batch", ("sunpy_nn.enhance", "sunpy_nn.denoise", "sunpy_nn.parallel")) == []


def test_header_imports_nothing_above_it():
    above = (
        "sunpy_nn.enhance",
        "sunpy_nn.denoise",
        "sunpy_nn.io",
        "sunpy_nn.training",
        "sunpy_nn.batch",
        "sunpy_nn.baselines",
        "sunpy_nn.parallel",
        "sunpy_nn.utils",  # utils re-exports from header: header stays below it
    )
    assert _offending("sunpy_nn.header", above) == []


def test_baselines_do_not_import_enhance():
    assert _offending("sunpy_nn.baselines", ("sunpy_nn.enhance", "sunpy_nn.parallel")) == []


def test_no_import_cycle_in_the_package():
    # Every module may import the package itself (`from sunpy_nn import __version__`), which is left out here.
    modules = [m for m in MODULES if m != "sunpy_nn"]
    graph = {m: {n for n in modules if n != m and _offending(m, (n,)) and not n.startswith(m + ".")} for m in modules}

    def cycle(start):
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for n in graph[node]:
                if n == start:
                    return [*path, n]
                if n not in seen:
                    seen.add(n)
                    stack.append((n, (*path, n)))
        return None

    assert cycle("sunpy_nn.enhance") is None  # the loop enhance -> parallel -> enhance is gone
    assert cycle("sunpy_nn.batch") is None and cycle("sunpy_nn.parallel") is None
    assert {m: c for m in modules if (c := cycle(m))} == {}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("sunpy_nn.denoise:CubeAxes", "sunpy_nn.cube:CubeAxes"),
        ("sunpy_nn.denoise:find_axes", "sunpy_nn.cube:find_axes"),
        ("sunpy_nn.denoise:_stokes_labels", "sunpy_nn.cube:stokes_labels"),
        ("sunpy_nn.denoise:estimate_noise", "sunpy_nn.metrics:estimate_noise"),
        ("sunpy_nn.denoise:NOISE_METHODS", "sunpy_nn.metrics:NOISE_METHODS"),
        ("sunpy_nn.denoise:temporal_neighbours", "sunpy_nn.training.noise2noise:temporal_neighbours"),
        ("sunpy_nn.training:temporal_neighbours", "sunpy_nn.training.noise2noise:temporal_neighbours"),
        ("sunpy_nn.training:train_noise2noise", "sunpy_nn.training.noise2noise:train_noise2noise"),
        ("sunpy_nn.nn:resolve_device", "sunpy_nn.nn.device:resolve_device"),
        ("sunpy_nn.nn.runner:resolve_device", "sunpy_nn.nn.device:resolve_device"),
        ("sunpy_nn.nn:PRECISIONS", "sunpy_nn.nn.device:PRECISIONS"),
        ("sunpy_nn.nn.optimize:PRECISIONS", "sunpy_nn.nn.device:PRECISIONS"),
        ("sunpy_nn.nn:bf16_is_native", "sunpy_nn.nn.device:bf16_is_native"),
        ("sunpy_nn.nn.optimize:bf16_is_native", "sunpy_nn.nn.device:bf16_is_native"),
        ("sunpy_nn.nn:configure_threads", "sunpy_nn.nn.device:configure_threads"),
        ("sunpy_nn.nn.optimize:configure_threads", "sunpy_nn.nn.device:configure_threads"),
        ("sunpy_nn.nn.optimize:PreparedModel", "sunpy_nn.nn.prepared:PreparedModel"),
        ("sunpy_nn.nn.optimize:relative_error", "sunpy_nn.nn.prepared:relative_error"),
        ("sunpy_nn.nn.optimize:ACCURACY_BOUND", "sunpy_nn.nn.prepared:ACCURACY_BOUND"),
        ("sunpy_nn.nn:PreparedModel", "sunpy_nn.nn.prepared:PreparedModel"),
        ("sunpy_nn.parallel:is_dask", "sunpy_nn.nn.lazy:is_dask"),
        ("sunpy_nn.parallel:lazy_tiled", "sunpy_nn.nn.lazy:lazy_tiled"),
        ("sunpy_nn.parallel:BatchError", "sunpy_nn.batch:BatchError"),
        ("sunpy_nn.parallel:MapFailure", "sunpy_nn.batch:MapFailure"),
        ("sunpy_nn.parallel:resolve_scheduler", "sunpy_nn.batch:resolve_scheduler"),
        ("sunpy_nn.parallel:SCHEDULERS", "sunpy_nn.batch:SCHEDULERS"),
        ("sunpy_nn.parallel:enhance_batch", "sunpy_nn.enhance:enhance_batch"),
        ("sunpy_nn.enhance:superres_meta", "sunpy_nn.header:superres_meta"),
        ("sunpy_nn.enhance:_pixel_scale_arcsec", "sunpy_nn.header:pixel_scale_arcsec"),
        ("sunpy_nn.enhance:_disk_geometry", "sunpy_nn.header:_disk_geometry"),
        ("sunpy_nn.enhance:PHOTOSPHERIC_WAVELENGTHS", "sunpy_nn.header:PHOTOSPHERIC_WAVELENGTHS"),
        ("sunpy_nn.utils:append_history", "sunpy_nn.header:append_history"),
        ("sunpy_nn.utils:provenance_lines", "sunpy_nn.header:provenance_lines"),
    ],
)
def test_old_import_paths_give_the_same_objects(old, new):
    def get(path):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    assert get(old) is get(new)


def test_one_hmi_pixel_scale():
    import astropy.units as u

    from sunpy_nn import baselines, enhance, metrics, psf
    from sunpy_nn.data import synthetic
    from sunpy_nn.training import degradation

    assert psf.HMI_PIXEL_SCALE_ARCSEC == 0.504
    assert psf.HMI_PIXEL_SCALE_ARCSEC * u.arcsec / u.pix == enhance.HMI_PIXEL_SCALE
    assert synthetic.HMI_SCALE is degradation.HMI_SCALE is psf.HMI_PIXEL_SCALE_ARCSEC
    assert baselines.richardson_lucy.__kwdefaults__["pixel_scale"] is psf.HMI_PIXEL_SCALE_ARCSEC
    assert metrics.forward_consistency.__kwdefaults__["pixel_scale"] is psf.HMI_PIXEL_SCALE_ARCSEC
