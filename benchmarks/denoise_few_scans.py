#!/usr/bin/env python
"""
Temporal mode on short series (exploratory): what ``denoise_cube``'s default does with three or four scans.

`sunpy_nn.denoise.auto_temporal` gives ``temporal=1`` (each scan predicted from its two neighbours) to series of
three or four scans; the science benchmark (``benchmarks/denoise_science.py``) measures six-scan cubes with
``temporal=2``. This script fits cubes of that benchmark (``--parts``, the white-noise one by default: IQUV x 9
tunings x 128 x 128, noise 3e-3, kG fields, the same seed) cut to ``--scans`` scans, in single-scan mode
(``temporal=0``) and with the default (``temporal=1``), and prints the rms error of Q, U and V in units of the noise,
overall and above 3 sigma, the fractions of errors within 1 and 2 sigma and the rms of error / sigma. ``--jobs``
fits at once, one torch thread each (two fits: about 12 minutes on two idle cores), on the best device. Writes
``benchmarks/results/denoise_few_scans.json``; not a docs producer.

Run from the repository root::

    python benchmarks/denoise_few_scans.py --scans 4
    python benchmarks/denoise_few_scans.py --scans 3 4 --parts white correlated evolving --jobs 12   # on a GPU
    python benchmarks/denoise_few_scans.py --quick     # smoke test of the script (numbers meaningless)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _exploratory

OUT = Path(__file__).parent / "results" / "denoise_few_scans.json"


def fit(args: tuple[int, int, str]) -> dict:
    """Score ``denoise_cube`` with ``temporal`` on the first ``n_scans`` scans of a science benchmark cube."""
    import denoise_science
    import torch
    from ndcube import NDCube

    temporal, n_scans, part = args
    cube, truth = denoise_science._cube(part)
    cube = NDCube(np.asarray(cube.data)[:n_scans], wcs=cube.wcs[:n_scans])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return _exploratory.score(cube, truth[:n_scans], temporal, n_scans=n_scans, part=part, device=device)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scans", type=int, nargs="+", default=[4], choices=(3, 4), help="scans (auto_temporal: k=1)")
    p.add_argument("--parts", nargs="+", default=["white"], help="cubes of benchmarks/denoise_science.py")
    args = _exploratory.parse(p, OUT)
    rows = _exploratory.run(
        fit, [(temporal, n, part) for part in args.parts for n in args.scans for temporal in (0, 1)], args
    )
    for row in rows:
        strong = [b["rms"] for b in row["bins"] if b["low"] >= 3]
        print(
            f"{row['part']:10s} {row['method']:12s} {row['n_scans']} scans: rms Q/U/V "
            + "/".join(f"{row[f'rms_{s}']:.3f}" for s in "QUV")
            + f", above 3 sigma {strong[0]:.3f} / {strong[1]:.3f}, within 1/2 sigma "
            + f"{row['coverage']['1sigma']:.3f} / {row['coverage']['2sigma']:.3f}, rms z {row['z']['rms']:.2f}, "
            + f"{row['time_s']:.0f} s ({row['device']})"
        )
    print("quick: nothing written" if args.quick else f"wrote {args.out}")


if __name__ == "__main__":
    main()
