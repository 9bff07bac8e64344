"""
Sphinx extension: the docstring sections that numpydoc's validation does not check (issue #17).

- **Raises**: a public callable whose own body raises an exception (a ``raise`` statement other than a bare
  re-raise) documents it in a ``Raises`` section.
- **References**: a public callable that implements a published method (`REFERENCED`) names its source (paper,
  equation) in a ``References`` section.

Each missing section is a Sphinx warning, so the build fails with ``-W``. ``tests/test_docstrings.py`` runs the same
`check` over the public API without building the docs.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from sphinx.util import logging

logger = logging.getLogger(__name__)

# Callables that implement a published method: each names its paper (and equation) under References.
REFERENCED = frozenset(
    {
        "sunpy_nn.enhance_map",
        "sunpy_nn.enhance.enhance_map",
        "sunpy_nn.enhance.enhance_array",
        "sunpy_nn.enhance.enhance_batch",
        "sunpy_nn.enhance.normalise",
        "sunpy_nn.denoise_cube",
        "sunpy_nn.denoise.denoise_cube",
        "sunpy_nn.Denoiser",
        "sunpy_nn.denoise.Denoiser",
        "sunpy_nn.baselines.richardson_lucy",
        "sunpy_nn.baselines.pca_denoise",
        "sunpy_nn.psf.hmi_psf",
        "sunpy_nn.psf.airy_psf",
        "sunpy_nn.psf.degrade",
        "sunpy_nn.metrics.estimate_noise",
        "sunpy_nn.metrics.psnr",
        "sunpy_nn.metrics.ssim",
        "sunpy_nn.nn.EnhanceNet",
        "sunpy_nn.nn.UNet",
        "sunpy_nn.training.train_enhance",
        "sunpy_nn.training.train_noise2noise",
        "sunpy_nn.training.noise2noise.train_noise2noise",
        "sunpy_nn.training.DegradationModel",
        "sunpy_nn.io.load_keras_enhance",
        "sunpy_nn.io.load_keras_unet",
    }
)


def _section(doc: str, title: str) -> bool:
    lines = doc.splitlines()
    return any(
        line.strip() == title and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        for i, line in enumerate(lines)
    )


def _raises(obj) -> bool:
    """Whether the body of ``obj`` (a class: its ``__init__``) holds a ``raise`` with an exception."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    target = inspect.unwrap(getattr(target, "__func__", target))
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        return False
    tree = ast.parse(source)
    body = tree.body[0] if tree.body and isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef) else tree
    return any(isinstance(node, ast.Raise) and node.exc is not None for node in ast.walk(body))


def check(name: str, obj) -> list[str]:
    """The missing sections of the public callable ``obj`` documented as ``name``, as readable messages."""
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
        return []
    if inspect.isclass(obj) and issubclass(obj, BaseException | Warning):
        return []  # an exception class documents when it is raised, not what it raises
    doc = inspect.getdoc(obj) or ""
    problems = []
    if _raises(obj) and not _section(doc, "Raises"):
        problems.append(f"{name}: raises an exception but has no Raises section")
    if name in REFERENCED and not _section(doc, "References"):
        problems.append(f"{name}: implements a published method but has no References section")
    return problems


def _process(app, what, name, obj, options, lines) -> None:
    if not name.startswith("sunpy_nn") or any(part.startswith("_") for part in name.split(".")):
        return
    for problem in check(name, obj):
        logger.warning(f"[docstring_sections] {problem}")


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
