#!/usr/bin/env python
"""
Temporal mode's window on longer series (exploratory): ``temporal=3`` against the default ``temporal=2``.

`sunpy_nn.denoise.auto_temporal` gives ``temporal=2`` (each scan predicted from its four neighbours) to every series
of five or more scans. With six scans the oracle Wiener filter of all of them leaves less error than that of the five
temporal mode sees (``benchmarks/denoise_bound.py``), but a window of ``2k + 1`` scans needs ``2k + 1`` scans. This
script draws the cubes of the science benchmark (``benchmarks/denoise_science.py``: ``--parts``, the correlated one by
default; IQUV x 9 tunings x 128 x 128, noise 3e-3, kG fields, seed 1) with ``--scans`` scans (8 by default) and fits
``denoise_cube`` with ``temporal=2`` and ``temporal=3`` (``seed=0``), and prints the rms error of Q, U and V in units
of the noise, overall and in the middle two scans (whose window is not shifted inward), the fractions of errors within
1 and 2 sigma and the rms of error / sigma. ``--jobs`` fits at once, one torch thread each (two fits: about 13 minutes
on two idle cores). Writes ``benchmarks/results/denoise_window.json``; not a docs producer.

Run from the repository root::

    python benchmarks/denoise_window.py                              # the correlated cube, 8 scans
    python benchmarks/denoise_window.py --parts evolving fast --jobs 4
    python benchmarks/denoise_window.py --quick                      # smoke test of the script (numbers meaningless)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _exploratory

OUT = Path(__file__).parent / "results" / "denoise_window.json"


def fit(args: tuple[int, int, str]) -> dict:
    """Score ``denoise_cube`` with ``temporal`` on the science benchmark's cube ``part`` drawn with ``n_scans``."""
    import denoise_science

    from sunpy_nn.data.synthetic import synthetic_crisp_cube

    temporal, n_scans, part = args
    kw = {"v_peak": 60.0, "qu_peak": 30.0, "seed": 1} | denoise_science.CUBES[part]  # denoise_science._cube's, n_scans
    quick = denoise_science.QUICK
    cube, truth = synthetic_crisp_cube(48 if quick else 128, n_wavelengths=3 if quick else 9, n_scans=n_scans, **kw)
    row, est = _exploratory.score(cube, truth, temporal, n_scans=n_scans, part=part)
    middle = slice(n_scans // 2 - 1, n_scans // 2 + 1)
    err = (est[middle] - truth[middle]) / denoise_science.NOISE
    return row | {"middle_rms": {s: float(np.sqrt(np.mean(err[:, i] ** 2))) for i, s in enumerate("IQUV")}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scans", type=int, default=8, help="scans of each cube (at least 7, for temporal=3)")
    p.add_argument("--parts", nargs="+", default=["correlated"], help="cubes of benchmarks/denoise_science.py")
    args = _exploratory.parse(p, OUT)
    if args.scans < 7:
        p.error("temporal=3 needs at least 7 scans")
    rows = _exploratory.run(fit, [(temporal, args.scans, part) for part in args.parts for temporal in (2, 3)], args)
    for row in rows:
        print(
            f"{row['part']:10s} {row['method']:10s} {row['n_scans']} scans: rms Q/U/V "
            + "/".join(f"{row[f'rms_{s}']:.4f}" for s in "QUV")
            + ", middle scans "
            + "/".join(f"{row['middle_rms'][s]:.4f}" for s in "QUV")
            + f", within 1/2 sigma {row['coverage']['1sigma']:.3f} / {row['coverage']['2sigma']:.3f}, "
            + f"rms z {row['z']['rms']:.2f}, {row['time_s']:.0f} s"
        )
    print("quick: nothing written" if args.quick else f"wrote {args.out}")


if __name__ == "__main__":
    main()
