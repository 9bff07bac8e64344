"""
Configuration file for the Sphinx documentation builder of sunpy_nn.

Build with::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build works offline. Cross-links to other projects' documentation (intersphinx) need the network, so they
are switched on only when ``SUNPY_NN_DOCS_INTERSPHINX=1`` is set or the build runs on Read the Docs.
"""

import datetime
import os
import sys

import matplotlib

from packaging.version import Version

# The gallery runs its examples inside the build: draw off-screen, on any machine.
matplotlib.use("Agg")

from sunpy_nn import __version__

# -- Project information ---------------------------------------------------------------------------------------
project = "sunpy_nn"
author = "The sunpy_nn developers"
copyright = f"{datetime.datetime.now(datetime.timezone.utc).year}, {author}"

_version = Version(__version__)
release = __version__
# A short X.Y.Z (plus .devN) for the page header, without the git hash of development versions.
version = f"{_version.base_version}.dev{_version.dev}" if _version.is_devrelease else _version.base_version

# -- General configuration -------------------------------------------------------------------------------------
on_rtd = os.environ.get("READTHEDOCS", "") == "True"
use_intersphinx = on_rtd or os.environ.get("SUNPY_NN_DOCS_INTERSPHINX", "") == "1"

# Local extensions: docs/_ext (the Raises/References sections that numpydoc's validation does not check).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

extensions = [
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
    "numpydoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    # Serve MathJax from the built site (_static/mathjax) instead of a CDN, so math renders offline.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "sphinx_changelog",
    "sphinx_gallery.gen_gallery",
    "docstring_sections",
    "generated_pages",
]
if use_intersphinx:
    extensions.append("sphinx.ext.intersphinx")

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Treat everything in single backticks as a Python cross-reference, as the docstrings do.
default_role = "obj"

# Unresolved cross-references (to numpy, torch, sunpy... when intersphinx is off) are rendered as plain
# code rather than failing the build.
nitpicky = False

# Do not show torch's docstrings for methods that sunpy_nn's networks override without one (e.g. ``forward``).
autodoc_inherit_docstrings = False

# -- sphinx-automodapi -----------------------------------------------------------------------------------------
# Inheritance diagrams need Graphviz's ``dot`` program, which is not a Python dependency.
automodapi_inheritance_diagram = False
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False

# -- numpydoc --------------------------------------------------------------------------------------------------
# automodapi already writes the member tables of classes; numpydoc's would be duplicates.
numpydoc_show_class_members = False
# Cross-referencing of parameter types is left to the backtick roles written in the docstrings.
numpydoc_xref_param_type = False
# Every public callable documents its parameters and what it returns (the build fails otherwise, with -W):
# GL08 a docstring, SS01 a summary, PR01/PR02 each parameter once and no unknown one, PR07 with a description,
# RT01/RT03 a Returns section with a description, YD01 a Yields section for generators. The Raises and References
# sections that numpydoc does not check are checked by the local extension ``docstring_sections`` below.
numpydoc_validation_checks = {"GL08", "SS01", "PR01", "PR02", "PR07", "RT01", "RT03", "YD01"}
# Private names, torch's hooks that the networks override (documented by their class), and constants (ALL_CAPS data,
# documented by their comment; a Quantity constant would otherwise be validated against Quantity's constructor).
numpydoc_validation_exclude = {r"\._[a-z]", r"\.forward$", r"\.extra_repr$", r"\.[A-Z][A-Z0-9_]*$"}

# -- sphinx-gallery -------------------------------------------------------------------------------------------
# Every ``examples/*.py`` is executed at build time (not only ``plot_*`` files), and a failing example fails the
# build. The examples use only the synthetic generators of sunpy_nn.data.synthetic, so the build works offline and
# from an sdist, and a downloaded example makes the figures shown on the site. Each example names its thumbnail
# figure (``# sphinx_gallery_thumbnail_number``), a square-ish one.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "generated/gallery",
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"__init__\.py$",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    # Show what the examples print, not the repr of a cell's last expression (matplotlib Text and Legend objects).
    "capture_repr": (),
    "download_all_examples": False,
    "write_computation_times": True,
    "show_memory": False,
    "doc_module": ("sunpy_nn",),
}

# -- intersphinx -----------------------------------------------------------------------------------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
    "sunpy": ("https://docs.sunpy.org/en/stable/", None),
    "ndcube": ("https://docs.sunpy.org/projects/ndcube/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
}

# -- Options for HTML output -----------------------------------------------------------------------------------
html_theme = "sunpy"
html_title = f"sunpy_nn {version}"
html_static_path = []


# -- Hooks -----------------------------------------------------------------------------------------------------
def _always_reread_changelog(app, env, added, changed, removed):
    # The changelog page renders the towncrier fragments in ../changelog/, which Sphinx does not track:
    # re-read it on every build so that incremental builds show new fragments.
    return ["whatsnew/changelog"]


def setup(app):
    app.connect("env-get-outdated", _always_reread_changelog)
