"""
Effect of the intensity-range augmentation on a quiet-Sun-only training set.

Trains two lite Enhance networks (depth 1, 32 filters) on the MURaM quiet-Sun snapshot with the same seed and
recipe, one with ``intensity_range=(0.2, 1.0), intensity_fraction=0.3`` (the shipped setting) and one without,
then compares them on held-out pairs (the right quarter of the snapshot) at the quiet-Sun level and darkened to
umbral levels (x0.5, x0.3, x0.2), where the un-augmented network has never seen data.

    python benchmarks/intensity_augmentation.py [--patches 3000] [--epochs 3] [--docs]

``--docs`` also writes ``docs/_static/training/intensity_augmentation.json``, from which the training guide's table
and figures are written when the docs are built (``docs/_ext/generated_training.py``); the file records the
sunpy_nn version that made it, so a test can tell when it is older than this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import sunpy_nn
from sunpy_nn.metrics import psnr
from sunpy_nn.training import make_enhance_pairs, train_enhance

ROOT = Path(__file__).resolve().parents[1]
MURAM = ROOT.parent / "shared" / "data" / "enhance" / "muram_qs_continuum_1000.npy"
DOCS = ROOT / "docs" / "_static" / "training" / "intensity_augmentation.json"
N_HELD_OUT = 300
FACTORS = (1.0, 0.5, 0.3, 0.2)
AUGMENTATION = {"intensity_range": (0.2, 1.0), "intensity_fraction": 0.3}  # the setting of the shipped v1 weights
NETWORK = {"depth": 1, "n_filters": 32}


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
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "intensity_augmentation.json")
    p.add_argument("--docs", action="store_true", help=f"also write {DOCS.relative_to(ROOT)} for the training guide")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if not MURAM.exists():
        raise SystemExit(f"{MURAM} is absent: this benchmark needs the shared reference data")
    muram = np.load(MURAM).astype(np.float64)
    muram /= muram.mean()
    val = make_enhance_pairs(
        muram,
        pixel_scale=0.0662,
        kind="intensity",
        n_patches=N_HELD_OUT,
        region=(0.75, 1.0),
        input_size=30,
        guard=False,
        augment=False,
        seed=args.seed + 100,
    )
    results = {}
    for label, rng_kw in [("without", {}), ("with", AUGMENTATION)]:
        model, _ = train_enhance(
            muram,
            pixel_scale=0.0662,
            kind="intensity",
            epochs=args.epochs,
            n_patches=args.patches,
            n_validation=200,
            lr=1e-3,
            schedule="cosine",
            **NETWORK,
            seed=args.seed,
            progress=False,
            **rng_kw,
        )
        results[label] = {f"x{f}": evaluate(model, val, f) for f in FACTORS}
    print(f"{'held-out MURaM scaled by':28s} {'without aug.':>22s} {'with aug. (0.2-1.0, 30 %)':>28s}")
    for f in (f"x{f}" for f in FACTORS):
        a, b = results["without"][f], results["with"][f]
        print(
            f"  {f:26s} PSNR {a['psnr_db']:6.2f} dB, bias {a['mean_bias_rel']:+.3f}   "
            f"PSNR {b['psnr_db']:6.2f} dB, bias {b['mean_bias_rel']:+.3f}"
        )
    record = {
        "sunpy_nn_version": sunpy_nn.__version__,  # which code made it (the docs table made from it checks this)
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "threads": args.threads,
        "runtime_s": round(time.perf_counter() - t0, 1),
        "settings": {
            "patches": args.patches,
            "epochs": args.epochs,
            "seed": args.seed,
            "lr": 1e-3,
            "schedule": "cosine",
            **NETWORK,
            "held_out_pairs": N_HELD_OUT,
            "held_out_region": [0.75, 1.0],
            "factors": list(FACTORS),
            "augmentation": {k: list(v) if isinstance(v, tuple) else v for k, v in AUGMENTATION.items()},
        },
        "results": results,
    }
    for out in [args.out] + ([DOCS] if args.docs else []):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
