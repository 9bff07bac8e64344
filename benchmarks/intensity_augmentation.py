"""
Effect of the intensity-range augmentation on a quiet-Sun-only training set.

Trains two lite Enhance networks (depth 1, 32 filters) on the MURaM quiet-Sun snapshot with the same seed and
recipe, one with ``intensity_range=(0.2, 1.0), intensity_fraction=0.3`` (the shipped setting) and one without,
then compares them on held-out pairs (the right quarter of the snapshot) at the quiet-Sun level and darkened to
umbral levels (x0.3), where the un-augmented network has never seen data.

    python benchmarks/intensity_augmentation.py [--patches 3000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from sunpy_nn.metrics import psnr
from sunpy_nn.training import make_enhance_pairs, train_enhance

ROOT = Path(__file__).resolve().parents[1]
MURAM = ROOT.parent / "shared" / "data" / "enhance" / "muram_qs_continuum_1000.npy"


def evaluate(model, pairs, factor: float) -> dict:
    x = torch.from_numpy(pairs.inputs * factor)
    with torch.inference_mode():
        y = model(x).numpy()
    t = pairs.targets * factor
    rel = float(np.sqrt(np.mean((y - t) ** 2)) / factor)  # rms error in units of the local quiet-Sun level
    return {
        "psnr_db": float(np.mean([psnr(a[0], b[0], data_range=factor) for a, b in zip(y, t, strict=True)])),
        "rms_error_rel": rel,
        "mean_bias_rel": float((y.mean() - t.mean()) / factor),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patches", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "intensity_augmentation.json")
    args = p.parse_args()
    if not MURAM.exists():
        raise SystemExit(f"{MURAM} is absent: this benchmark needs the shared reference data")
    muram = np.load(MURAM).astype(np.float64)
    muram /= muram.mean()
    val = make_enhance_pairs(
        muram,
        pixel_scale=0.0662,
        kind="intensity",
        n_patches=300,
        region=(0.75, 1.0),
        input_size=30,
        guard=False,
        augment=False,
        seed=args.seed + 100,
    )
    results = {}
    for label, rng_kw in [("without", {}), ("with", {"intensity_range": (0.2, 1.0), "intensity_fraction": 0.3})]:
        model, _ = train_enhance(
            muram,
            pixel_scale=0.0662,
            kind="intensity",
            epochs=args.epochs,
            n_patches=args.patches,
            n_validation=200,
            lr=1e-3,
            schedule="cosine",
            depth=1,
            n_filters=32,
            seed=args.seed,
            progress=False,
            **rng_kw,
        )
        results[label] = {f"x{f}": evaluate(model, val, f) for f in (1.0, 0.5, 0.3, 0.2)}
    print(f"{'held-out MURaM scaled by':28s} {'without aug.':>22s} {'with aug. (0.2-1.0, 30 %)':>28s}")
    for f in ("x1.0", "x0.5", "x0.3", "x0.2"):
        a, b = results["without"][f], results["with"][f]
        print(
            f"  {f:26s} PSNR {a['psnr_db']:6.2f} dB, bias {a['mean_bias_rel']:+.3f}   "
            f"PSNR {b['psnr_db']:6.2f} dB, bias {b['mean_bias_rel']:+.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
