#!/usr/bin/env python
"""
Fetch, on a machine with internet access, the wheels that a GPU machine without it needs to run ``gpu.py``.

Run from the repository root::

    python benchmarks/gpu_wheels.py                       # into .whl/ (git-ignored), for Python 3.12 on x86-64
    python benchmarks/gpu_wheels.py --have installed.txt  # the GPU machine's own package list (one name a line)

The requirements are the package's own (``pyproject.toml``: its dependencies and the ``keras``, ``dask`` and
``plot`` extras, which the test suite imports), ``pytest-doctestplus`` (the tests' options need it) and
``numpydoc`` (a test module imports it), without
torch: the GPU machine brings its CUDA build. pip resolves them for the target Python and platform; then every
wheel of a project the GPU machine already holds is dropped (``--have``; by default
``benchmarks/gpu_image_packages.txt``, the package list of the CUDA PyTorch image this project's GPU machines run,
as read on 2026-11-17), so that what travels stays small. On the GPU machine::

    python3 -m venv --system-site-packages /tmp/v && /tmp/v/bin/python -m pip install -q --no-index --no-deps .whl/*.whl
    PYTHONPATH=$PWD /tmp/v/bin/python -c "import sunpy.map, ndcube, reproject, dask.distributed, sunpy_nn"
    PYTHONPATH=$PWD /tmp/v/bin/python benchmarks/gpu.py --docs

The virtual environment sees the image's packages (torch, numpy, scipy, ...) and adds the wheels; the import line
fails at once, before any GPU time goes into the benchmark, if an image package is too old for a wheel.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


def _name(requirement: str) -> str:
    """The normalised project name (PEP 503) of a requirement such as ``"sunpy[map]>=6.0"``."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def requirements() -> list[str]:
    """What ``gpu.py`` and the CUDA tests import, torch left out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = [*project["dependencies"], *(r for e in ("keras", "dask", "plot") for r in extras[e])]
    reqs += [r for r in extras["tests"] if _name(r) in ("pytest-doctestplus", "numpydoc")]  # the tests import them
    return [r for r in reqs if _name(r) != "torch"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl", help="where the wheels go (emptied first)")
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    parser.add_argument("--have", type=Path, default=Path(__file__).with_name("gpu_image_packages.txt"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    reqs = requirements()
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--implementation", "cp"]
    cmd += ["--python-version", args.python_version, *(f"--platform={p}" for p in PLATFORMS), "-d", str(args.dest)]
    subprocess.run([*cmd, *reqs], check=True)
    lines = (line.strip() for line in args.have.read_text().splitlines())
    have = {_name(line) for line in lines if line and not line.startswith("#")}
    kept = 0
    for wheel in sorted(args.dest.glob("*.whl")):
        if _name(wheel.name.split("-")[0]) in have:  # a wheel's name: project-version-tags.whl
            wheel.unlink()
        else:
            kept += wheel.stat().st_size
            print(f"  {wheel.name}")
    print(f"{len(list(args.dest.glob('*.whl')))} wheels, {kept / 2**20:.1f} MiB in {args.dest} (requirements: {reqs})")


if __name__ == "__main__":
    main()
