"""
Every public callable of the API reference documents its parameters, what it returns, what it raises and, for a
published method, its source (issue #17): the checks the docs build makes (numpydoc's validation with the codes of
``docs/conf.py``, and ``docs/_ext/docstring_sections.py``), run without building the docs.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import numpydoc.validate as numpydoc_validate
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from docstring_sections import check  # noqa: E402

sys.path.pop(0)

CONF = (ROOT / "docs" / "conf.py").read_text()
CHECKS = set(re.findall(r'"([A-Z]{2}\d\d)"', re.search(r"numpydoc_validation_checks = \{[^}]*\}", CONF).group(0)))
EXCLUDE = [re.compile(p) for p in eval(re.search(r"numpydoc_validation_exclude = (\{[^}]*\})", CONF).group(1))]
MODULES = re.findall(r"automodapi:: (\S+)", (ROOT / "docs" / "reference" / "index.rst").read_text())


def _public_callables() -> dict[str, object]:
    found, seen = {}, set()
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if id(obj) in seen:
                continue  # each object once, under the first name the reference lists it by
            seen.add(id(obj))
            path = f"{name}.{attr}"
            found[path] = obj
            if inspect.isclass(obj):
                for key, value in vars(obj).items():
                    method = inspect.isfunction(value) or isinstance(value, classmethod | staticmethod | property)
                    if method and not key.startswith("_"):
                        found.setdefault(f"{path}.{key}", getattr(obj, key))
    return {k: v for k, v in found.items() if not any(p.search(k) for p in EXCLUDE)}


CALLABLES = _public_callables()


def test_the_api_reference_has_callables():
    assert len(CALLABLES) > 60 and {"PR01", "RT01", "GL08"} <= CHECKS


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_numpydoc_sections(name):
    errors = [f"{code}: {message}" for code, message in numpydoc_validate.validate(name)["errors"] if code in CHECKS]
    obj = CALLABLES[name]
    problems = errors + ([] if isinstance(obj, property) else check(name, obj))
    assert not problems, "\n".join(problems)
