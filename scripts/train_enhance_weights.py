"""
Train the Enhance v2 weights that ship with sunpy_nn, and write them with their model cards.

The commands of the shipped v2 weights:

    python scripts/train_enhance_weights.py intensity --start enhance_intensity_v1 --patches 10000 \
        --extra-dark 0.35 --dark-range 0.15 1.0 --freeze-bn --augment --lr 1e-4 --epochs 4 --threads 1
    python scripts/train_enhance_weights.py blos --threads 1 --minutes 80 --epochs 6 --patches 10000

Training sources: the real high-resolution frames of ../shared/data/hires and the MURaM snapshot
(`sunpy_nn.training.sources.load_reference_sources`; never copied into the package), each with its right quarter
held out. Pairs: the randomised HMI degradation `sunpy_nn.training.DegradationModel` (PSF, detector, noise, phase,
rotation, pixel-scale jitter). Recipe: fine-tuning of the v1 weights (full paper architecture, depth 5, 64
filters), Adam, MSE, the paper's L2, batch 16 of 32x32 input patches, cosine-annealed learning rate; with
``--freeze-bn`` the batch-normalisation statistics of the start stay fixed, so that the network trained is the one
evaluated (without it, the first intensity v2 came back with a +1 % quiet-Sun offset). Checkpoints
go to ``scripts/runs/<kind>_v2/`` after every epoch and a restarted run resumes from them; ``--finalise`` writes
the best checkpoint as ``sunpy_nn/data/weights/enhance_<kind>_v2.pt`` with its ``.json`` model card without
training further.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from sunpy_nn.data import load_weights, save_weights
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.training import DegradationModel, train_enhance
from sunpy_nn.training.degradation import make_source_pairs
from sunpy_nn.training.enhance import PAPER_L2
from sunpy_nn.training.sources import load_reference_sources

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
INTENSITY_RANGE = (0.2, 1.0)
INTENSITY_FRACTION = 0.15


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["intensity", "blos"])
    p.add_argument("--minutes", type=float, default=95)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--patches", type=int, default=12000)
    p.add_argument("--validation", type=int, default=600)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--device", default=None)
    p.add_argument("--start", default=None, help="registered name or file to fine-tune (default enhance_<kind>_v1)")
    p.add_argument("--out", type=Path, default=ROOT / "sunpy_nn" / "data" / "weights")
    p.add_argument("--run-dir", type=Path, default=None, help="checkpoints (default scripts/runs/<kind>_v2)")
    p.add_argument("--pairs-from", type=Path, default=None, help="reuse the pairs.pt of another run folder")
    p.add_argument(
        "--extra-dark",
        type=float,
        default=0.0,
        help="scale this fraction of the (reused) pairs by a factor drawn from --dark-range, input noise included",
    )
    p.add_argument("--dark-range", type=float, nargs=2, default=(0.1, 1.0))
    p.add_argument(
        "--freeze-bn", action="store_true", help="fine-tune with fixed batch-normalisation statistics (as evaluated)"
    )
    p.add_argument("--augment", action="store_true", help="a random flip or quarter turn of every batch")
    p.add_argument("--finalise", action="store_true", help="write the best checkpoint so far; no more training")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = args.run_dir or ROOT / "scripts" / "runs" / f"{args.kind}_v2"
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(run_dir / "train.log"), logging.StreamHandler()],
    )
    t0 = time.perf_counter()
    sources = load_reference_sources(DATA, args.kind, seed=args.seed)
    degradation = DegradationModel()
    extra = {}
    if args.kind == "intensity":
        extra = {"intensity_range": INTENSITY_RANGE, "intensity_fraction": INTENSITY_FRACTION}
    pairs_file = run_dir / "pairs.pt"
    if pairs_file.exists():  # a resumed run trains on the same pairs
        train, val = torch.load(pairs_file, weights_only=False)
    else:
        if args.pairs_from is not None:
            train, val = torch.load(args.pairs_from / "pairs.pt", weights_only=False)
        else:
            train = make_source_pairs(
                sources,
                n_patches=args.patches,
                input_size=args.input_size,
                degradation=degradation,
                seed=args.seed,
                **extra,
            )
            val = make_source_pairs(
                sources,
                n_patches=args.validation,
                split="validation",
                input_size=16,
                degradation=degradation,
                seed=args.seed + 1,
                **extra,
            )
        if args.extra_dark:
            rng = np.random.default_rng(args.seed + 7)
            for pairs in (train, val):
                # Convolution and sampling are linear: a scaled pair is the observation of a darker scene (with its
                # photon noise scaled down too). Umbrae are rare in the real frames, so this teaches the dark levels.
                pick = rng.random(len(pairs)) < args.extra_dark
                f = rng.uniform(*args.dark_range, pick.sum()).astype(np.float32)[:, None, None, None]
                pairs.inputs[pick] *= f
                pairs.targets[pick] *= f
                pairs.meta["extra_dark"] = {"fraction": args.extra_dark, "range": list(args.dark_range)}
        torch.save((train, val), pairs_file)
    logging.info("built %d + %d pairs in %.0f s", len(train), len(val), time.perf_counter() - t0)
    if args.finalise:  # resume with the epochs done as the total: train_enhance returns the best checkpoint
        args.epochs = len(json.loads((run_dir / "history.json").read_text())["train_loss"])
    start = args.start or f"enhance_{args.kind}_v1"
    model, start_info = load_weights(start, architecture=EnhanceNet)
    model, hist = train_enhance(
        pairs=(train, val),
        model=model.train(),
        kind=args.kind,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        device=args.device,
        seed=args.seed,
        checkpoint_dir=run_dir,
        time_limit=args.minutes * 60,
        progress=False,
        freeze_batchnorm=args.freeze_bn,
        augment=args.augment,
    )
    card = {
        "kind": args.kind,
        "version": 2,
        "description": f"Enhance v2 x2 deconvolution/super-resolution network for SDO/HMI {args.kind}, trained on "
        "real high-resolution frames under a randomised HMI degradation",
        "units": "input and output in I/Ic (617.3 nm)" if args.kind == "intensity" else "input and output in kG",
        "training_data": [
            {
                "name": s.name,
                "pixel_scale_arcsec": s.pixel_scale,
                "weight": s.weight,
                "note": s.note,
                "held_out_x_fraction": list(s.held_out),
                "stats": s.stats,
            }
            for s in sources
        ],
        "degradation": degradation.as_dict(args.kind),
        "training_recipe": hist["recipe"]
        | {
            "fine_tuned_from": f"{start_info.name} (sha256 {start_info.sha256})",
            # the chain of stages stays on the card when a run starts from earlier v2 weights
            "start_recipe": start_info.card.get("training_recipe"),
            "l2_paper": PAPER_L2[args.kind],
            "patches_x_epochs": f"{len(train)} x {len(hist['train_loss'])}",
            "wall_time_s": round(sum(hist["epoch_time"]), 1),
            "threads": torch.get_num_threads(),
            "script": "scripts/train_enhance_weights.py",
        },
        "validation": {
            "held_out": "right quarter (x fraction 0.75-1.0) of every real frame, 16x16 input patches under the "
            "same randomised degradation; training patches keep their PSF footprints out of it",
            "val_mse_per_epoch": hist["val_loss"],
            "train_mse_per_epoch": hist["train_loss"],
            "best_epoch": hist["best_epoch"],
            "best_val_mse": min(hist["val_loss"]),
        },
        "citation": "Diaz Baso & Asensio Ramos 2018, A&A 614, A5 (method); weights trained by sunpy_nn",
    }
    path = save_weights(model, args.out / f"enhance_{args.kind}_v2.pt", name=f"enhance_{args.kind}_v2", card=card)
    (run_dir / "card.json").write_text(json.dumps(card, indent=1, default=str))
    logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
