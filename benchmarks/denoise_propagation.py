"""
How much of the neighbours' noise temporal mode's prediction carries, and how well each estimate measures it
(issue 14, exploratory).

A ``Denoiser(temporal=2)`` (the defaults; or ``--denoiser`` a saved one) predicts every scan of the white cube of
``benchmarks/denoise_science.py`` from its noise-free neighbours plus fresh noise, eight times: the variance of its
output over those realisations is the noise it passes on. Against it, per spectral component (Stokes V, means over
all scans and pixels, in noise units squared): the parametric bootstrap that the package uses
(`Denoiser._propagated_variance`) and the first-order noise injection that temporal denoisers before format 7 used,
both from one noisy realisation.

Run from the repository root::

    python benchmarks/denoise_propagation.py                         # fits first (about 9 minutes of one core)
    python benchmarks/denoise_propagation.py --denoiser temporal.pt  # a saved Denoiser(temporal=2) of that cube
    python benchmarks/denoise_propagation.py --quick                 # smoke test (numbers meaningless)

Not a docs producer: it prints and writes ``benchmarks/results/denoise_propagation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "denoise_propagation.json"
REALISATIONS = 8


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--denoiser", type=Path, help="a saved Denoiser(temporal=2) of the white cube (else fitted)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        os.environ["SUNPY_NN_BENCH_QUICK"] = "1"
    import denoise_science as ds
    import torch
    from ndcube import NDCube

    import sunpy_nn
    from sunpy_nn import Denoiser
    from sunpy_nn.denoise import _frames

    torch.set_num_threads(1)
    cube, truth = ds._cube("white")
    t0 = time.perf_counter()
    if args.denoiser:
        den = Denoiser.load(args.denoiser)
    else:
        epochs, patches = (1, 20) if ds.QUICK else (10, 1000)
        den = Denoiser(temporal=2).fit(
            cube, stokes=("Q", "U", "V"), epochs=epochs, patches_per_epoch=patches, seed=0, progress=False
        )
    rng = np.random.default_rng(5)
    found: dict[str, list] = {"realisations": [], "bootstrap": [], "injection": [], "component": []}
    count = [0]

    def measure(self, frames, context, sigma, scale, dev, tile_size, n_out, model, *rest):
        # the neighbours of the noise-free cube, as prediction prepared them (aligned, in components, normalised)
        clean = context / sigma

        def run(a):
            return self._run(a.astype(np.float32), dev, tile_size, n_out, model)[0]

        draws = [run(clean + rng.standard_normal(clean.shape)) for _ in range(REALISATIONS)]
        found["realisations"].append(float(np.var(draws, axis=0, ddof=1).mean()))
        noisy = (clean + rng.standard_normal(clean.shape)).astype(np.float32)
        for method in ("bootstrap", "injection"):
            self._propagation = method
            found[method].append(float(self._propagated_variance(noisy, 0.0, run).mean()))
        found["component"].append(count[0] % cube.data.shape[2])
        count[0] += 1
        return frames, np.ones_like(frames)

    _frames._FramesMixin._denoise_frames = measure
    den.predict(NDCube(truth.astype(np.float32), wcs=cube.wcs, unit=cube.unit), stokes=("V",), progress=False)
    comp = np.array(found.pop("component"))
    per = {k: [float(np.mean(np.array(v)[comp == c])) for c in range(cube.data.shape[2])] for k, v in found.items()}
    result = {
        "command": "python " + shlex.join(sys.argv),
        "sunpy_nn_version": sunpy_nn.__version__,
        "denoiser": str(args.denoiser) if args.denoiser else "fitted",
        "stokes": "V",
        "per_component": per,
        "eigenvalues_V": den.spectral_eigenvalues.get("V"),
        "wall_s": time.perf_counter() - t0,
    }
    print("component  realisations  bootstrap  injection  (variance of the prediction, noise units squared)")
    for c in range(len(per["realisations"])):
        print(f"{c:9d}  {per['realisations'][c]:12.4f}  {per['bootstrap'][c]:9.4f}  {per['injection'][c]:9.4f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
