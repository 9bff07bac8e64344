#!/usr/bin/env python
"""
The cost of the U-Net's Monte-Carlo dropout in a Noise2Noise training step on CPU (issue #16, training throughput).

Run from the repository root::

    python benchmarks/training_dropout.py            # about 1-2 minutes on one core
    python benchmarks/training_dropout.py --quick    # smoke test (numbers meaningless)

The step is ``benchmarks/keras_originals.py``'s Noise2Noise case, as `sunpy_nn.training.train_noise2noise` runs it:
the paper's U-Net (32 filters, depth 2, variance head, dropout 0.01), a batch of ten 52 x 52 patches, channels-last,
the fused Adam step, the L2 and aleatoric losses, one torch thread. Three settings run in alternating rounds on the
same network and batch:

- ``package``: the package's dropout (`sunpy_nn.nn.unet.sparse_dropout`, which draws only the dropped positions);
- ``torch``: `torch.nn.functional.dropout` (one random number per activation), as before version 0.2;
- ``none``: no dropout (the floor any dropout can reach).

Prints the CPU flags, the median time per step and patches per second of each, and the ratios package / torch and
package / none.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    import torch
    import torch.nn.functional as F

    import sunpy_nn
    import sunpy_nn.nn.unet as unet
    from sunpy_nn.nn import UNet
    from sunpy_nn.nn.device import _cpu_flags

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=30, help="timed steps per round and setting")
    args = p.parse_args()
    rounds, steps = (1, 2) if args.quick else (args.rounds, args.steps)
    torch.set_num_threads(1)
    package = unet.sparse_dropout
    dropouts = {"package": package, "torch": lambda x, p: F.dropout(x, p), "none": lambda x, p: x}

    def time_steps(setting: str) -> float:
        unet.sparse_dropout = dropouts[setting]  # what the U-Net's layers call on CPU
        try:
            torch.manual_seed(0)
            net = UNet(1, 1, 32, 2, padding="zeros", variance_head=True, dropout=0.01)
            net = net.to(memory_format=torch.channels_last).train()
            opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
            x = torch.randn(10, 1, 52, 52).contiguous(memory_format=torch.channels_last)
            y = x + 0.1 * torch.randn_like(x)
            for i in range(steps + 3):  # three warm-up steps
                if i == 3:
                    t0 = time.perf_counter()
                out = net(x)
                mean, log_var = out[:, :1], out[:, 1:]
                s2 = torch.exp(log_var) + 1.0
                loss = F.mse_loss(mean, y) + (((mean.detach() - y) ** 2) / (2 * s2) + 0.5 * torch.log(s2)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return (time.perf_counter() - t0) / steps
        finally:
            unet.sparse_dropout = package

    times: dict[str, list[float]] = {k: [] for k in dropouts}
    for _ in range(rounds):
        for setting in dropouts:
            times[setting].append(time_steps(setting))
    flags = sorted(f for f in _cpu_flags() if f.startswith(("avx", "amx")))
    print(f"sunpy_nn {sunpy_nn.__version__}, torch {torch.__version__}, {platform.machine()}, flags {flags}")
    median = {k: statistics.median(v) for k, v in times.items()}
    for setting, t in median.items():
        print(f"{setting:8s} {1000 * t:7.1f} ms per step  {10 / t:6.1f} patches/s  (median of {rounds} rounds)")
    ratios = {k: median["package"] / median[k] for k in ("torch", "none")}
    print(f"package / torch {ratios['torch']:.2f}, package / none {ratios['none']:.2f}")


if __name__ == "__main__":
    main()
