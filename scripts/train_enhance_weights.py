"""
Train the Enhance weights that ship with sunpy_nn, and write them with their model cards.

    python scripts/train_enhance_weights.py intensity --minutes 55 --threads 1
    python scripts/train_enhance_weights.py blos --minutes 55 --threads 1

Reads the MURaM quiet-Sun snapshot from ../shared/data/enhance (never copied into the package). Checkpoints go
to ``scripts/runs/<kind>/`` (resumable); the final weights to ``sunpy_nn/data/weights/enhance_<kind>.pt`` and
its ``.json`` model card. CPU recipe (about an hour per model on one core): the full paper architecture (depth 5,
64 filters), Adam, MSE, batch 32, the paper's L2; 6,000 training pairs x 5 epochs, 500 validation pairs. Because
that is ~30 times fewer steps than the paper's 50,000 x 20, the learning rate starts at 1e-3 and is
cosine-annealed to 1e-5 instead of the paper's constant 1e-4.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from sunpy_nn.data import save_weights
from sunpy_nn.data.synthetic import synthetic_blos
from sunpy_nn.training import make_enhance_pairs, train_enhance
from sunpy_nn.training.enhance import PAPER_L2

ROOT = Path(__file__).resolve().parents[1]
MURAM = ROOT.parent / "shared" / "data" / "enhance" / "muram_qs_continuum_1000.npy"
SCALE = 0.0662  # arcsec/pix of the MURaM snapshot
VALIDATION_REGION = (0.75, 1.0)  # the right quarter of every image, never trained on
INTENSITY_RANGE = (0.2, 1.0)
INTENSITY_FRACTION = 0.3


def training_images(kind: str, seed: int) -> tuple[list[np.ndarray], str]:
    muram = np.load(MURAM).astype(np.float64)
    muram /= muram.mean()  # quiet Sun only: the mean is the quiet-Sun level, so this is I/Ic
    if kind == "intensity":
        return [muram], "MURaM quiet-Sun continuum snapshot (1000x1000, 0.0662 arcsec/pix), normalised by its mean"
    rng = np.random.default_rng(seed)
    images = []
    for i in range(8):
        gran = np.rot90(muram, i % 4)
        gran = gran[:, ::-1] if i >= 4 else gran
        images.append(
            synthetic_blos(
                gran,
                SCALE,
                plage=float(rng.uniform(0.0, 0.5)),
                sunspot=i % 3 == 0,
                network_fraction=float(rng.uniform(0.02, 0.06)),
                seed=int(rng.integers(1 << 31)),
            ).astype(np.float64)
        )
    desc = (
        "8 synthetic line-of-sight magnetograms (sunpy_nn.data.synthetic.synthetic_blos, kG) built on the 8 "
        "rotations/flips of the MURaM quiet-Sun granulation: kG network and plage in the lanes, 3 with sunspots, "
        "weak internetwork"
    )
    return images, desc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["intensity", "blos"])
    p.add_argument("--minutes", type=float, default=55)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--patches", type=int, default=6000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--validation", type=int, default=500)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=ROOT / "sunpy_nn" / "data" / "weights")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = ROOT / "scripts" / "runs" / args.kind
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(run_dir / "train.log"), logging.StreamHandler()],
    )
    images, desc = training_images(args.kind, args.seed)
    t0 = time.perf_counter()
    common = {"pixel_scale": SCALE, "kind": args.kind}
    if args.kind == "intensity":
        common |= {"intensity_range": INTENSITY_RANGE, "intensity_fraction": INTENSITY_FRACTION}
    train = make_enhance_pairs(
        images, n_patches=args.patches, region=(0.0, VALIDATION_REGION[0]), seed=args.seed, **common
    )
    val = make_enhance_pairs(
        images,
        n_patches=args.validation,
        region=VALIDATION_REGION,
        input_size=30,
        guard=False,
        seed=args.seed + 1,
        **common,
    )
    logging.info("built %d + %d pairs in %.0f s", len(train), len(val), time.perf_counter() - t0)
    model, hist = train_enhance(
        pairs=(train, val),
        kind=args.kind,
        epochs=args.epochs,
        batch_size=32,
        lr=args.lr,
        schedule=args.schedule,
        device=args.device,
        seed=args.seed,
        checkpoint_dir=run_dir,
        time_limit=args.minutes * 60,
        progress=False,
    )
    card = {
        "kind": args.kind,
        "description": f"Enhance x2 deconvolution/super-resolution network for SDO/HMI {args.kind}",
        "units": "input and output in I/Ic" if args.kind == "intensity" else "input and output in kG",
        "training_data": desc,
        "training_recipe": hist["recipe"]
        | {
            "l2_paper": PAPER_L2[args.kind],
            "wall_time_s": round(sum(hist["epoch_time"]), 1),
            "threads": torch.get_num_threads(),
            "script": "scripts/train_enhance_weights.py",
            "validation_region": "right quarter (x fraction 0.75-1.0) of every image, 30x30 input patches; "
            "training patches keep their PSF footprints out of it",
        },
        "validation": {
            "val_mse_per_epoch": hist["val_loss"],
            "train_mse_per_epoch": hist["train_loss"],
            "best_epoch": hist["best_epoch"],
            "best_val_mse": min(hist["val_loss"]),
        },
        "citation": "Diaz Baso & Asensio Ramos 2018, A&A 614, A5 (method); weights trained by sunpy_nn",
    }
    path = save_weights(model, args.out / f"enhance_{args.kind}.pt", name=f"enhance_{args.kind}", card=card)
    logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
