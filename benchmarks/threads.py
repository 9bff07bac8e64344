#!/usr/bin/env python
"""
Torch threads under a competing CPU-bound process: the package's default choice against fixed counts (issue #16).

Run from the repository root::

    python benchmarks/threads.py                  # about 4-6 minutes on 2 CPU cores
    python benchmarks/threads.py --quick          # one round, 2 repeats: about 2 minutes
    python benchmarks/threads.py --no-competitor  # the same on the machine as it is
    python benchmarks/threads.py --fixed 1,2,4

One busy-loop process (``while True: pass``) competes for the CPUs throughout. Enhance on a 400x400 HMI continuum
image and the denoiser's U-Net on an 800x800 CRISP image (as in ``benchmarks/run.py``) run through
``run_tiled(precision="float32")``, the default inference path, each in a fresh process per thread setting:

* ``1``, ``2``, ...: ``OMP_NUM_THREADS`` set, the user's choice, which the package keeps;
* ``default``: nothing set (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` removed), so the package's thread policy
  chooses at the first ``run_tiled`` (it measures the others' load then: the warm-up run, not timed).

The settings run in turns, ``--rounds`` times (the load drifts on a shared machine); each process times
``--repeats`` runs after one warm-up. It prints the CPU (model, flags), the median time per setting, the count the
policy chose and why, and the ratio default / best fixed setting per network (target of issue #16: <= 1.3), and
writes the same as JSON to ``benchmarks/results/threads-<time>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = 1.3
NETWORKS = ("enhance", "unet")


def _bench_run():
    """benchmarks/run.py as a module: its images, networks and CPU report."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------ one setting
def child(network: str, repeats: int) -> None:
    """Time one network in this process as its environment sets the threads; print one JSON line."""
    bench = _bench_run()
    import torch

    from sunpy_nn.nn import run_tiled
    from sunpy_nn.nn.device import user_threads

    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("sunpy_nn.nn.device")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Keep())
    if network == "enhance":
        net, _ = bench._enhance_model()
        img, _ = bench._hmi_image(bench.ENHANCE_SIZE)
        kw = {"scale": 2, "halo": net.receptive_radius}
    else:
        net = bench._unet()
        img, _ = bench._crisp_image(bench.UNET_SIZE)
        kw = {"halo": net.receptive_radius, "align": net.align}

    def run():
        run_tiled(net, img, precision="float32", progress=False, **kw)

    t0 = time.perf_counter()
    run()  # warm-up: the optimised copy, and the thread policy's one measurement
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    chosen = user_threads()
    out = {
        "times_s": times,
        "first_s": first,
        "threads": torch.get_num_threads(),
        "set_by": chosen[1] if chosen else "policy",
        "log": records,
    }
    print(json.dumps(out), flush=True)


def _run_child(network: str, setting: str, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if setting != "default":
        env["OMP_NUM_THREADS"] = setting
    cmd = [sys.executable, __file__, "--_child", network, "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{network} with threads={setting} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--quick", action="store_true", help="one round, 2 repeats")
    parser.add_argument("--rounds", type=int, default=None, help="turns over all settings (default 2, 1 if --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per process (default 3, 2 if --quick)")
    parser.add_argument("--fixed", default="1,2", help="fixed thread counts to compare with (default 1,2)")
    parser.add_argument("--no-competitor", action="store_true", help="no busy-loop process")
    parser.add_argument("--networks", default=",".join(NETWORKS), help="enhance, unet or both (default)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also write docs/_static/performance/threads_<cpu class>_<competitor|idle>.json for the performance guide",
    )
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    if args._child:
        child(args._child, repeats)
        return 0
    rounds = args.rounds or (1 if args.quick else 2)
    settings = [s.strip() for s in args.fixed.split(",") if s.strip()] + ["default"]
    networks = [n.strip() for n in args.networks.split(",") if n.strip()]

    bench = _bench_run()
    print("Torch threads under a competing CPU-bound process (issue #16)", flush=True)
    cpu = bench.cpu_info()
    bench.print_cpu(cpu)
    bench._row("load average at start (1, 5, 15 min)", bench._load())
    competitor = None
    if not args.no_competitor:
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let it take its CPU before the first measurement
        bench._row("competitor", f"1 busy-loop process (pid {competitor.pid})")
    import sunpy_nn

    result: dict = {
        "sunpy_nn_version": sunpy_nn.__version__,  # which code made it (a docs table made from it checks this)
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "competitor": competitor is not None,
        "rounds": rounds,
        "repeats": repeats,
        "load_start": bench._load(),
        "networks": {},
    }
    runs: dict = {n: {s: [] for s in settings} for n in networks}
    t_start = time.perf_counter()
    try:
        for r in range(rounds):
            for network in networks:
                order = settings[r % len(settings) :] + settings[: r % len(settings)]  # turns: no fixed first
                for setting in order:
                    out = _run_child(network, setting, repeats)
                    runs[network][setting].append(out)
                    bench._row(
                        f"round {r + 1}: {network}, threads={setting}",
                        f"{statistics.median(out['times_s']):.3f} s on {out['threads']} thread(s) "
                        f"(set by {out['set_by']})",
                    )
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()

    bench._header("Summary: median time per setting (all rounds)")
    for network in networks:
        med = {s: statistics.median(t for o in runs[network][s] for t in o["times_s"]) for s in settings}
        fixed = {s: med[s] for s in settings if s != "default"}
        best = min(fixed, key=fixed.get)
        ratio = med["default"] / fixed[best]
        chosen = sorted({o["threads"] for o in runs[network]["default"]})
        why = runs[network]["default"][0]["log"]
        for s in settings:
            bench._row(f"{network}, threads={s}", f"{med[s]:.3f} s")
        bench._row(
            f"{network}: default / best fixed ({best})",
            f"{ratio:.2f} ({'met' if ratio <= TARGET else 'NOT MET'}: target <= {TARGET}); the policy chose "
            f"{'/'.join(map(str, chosen))} thread(s): {why[-1] if why else 'no log'}",
        )
        result["networks"][network] = {
            "median_s": med,
            "best_fixed": best,
            "ratio_default_over_best_fixed": ratio,
            "target_met": ratio <= TARGET,
            "default_threads": chosen,
            "policy_log": why,
            "runs": runs[network],
        }
    result["load_end"] = bench._load()
    result["wall_s"] = time.perf_counter() - t_start
    bench._row("load average at end (1, 5, 15 min)", bench._load())
    path = args.json or RESULTS / f"threads-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float))
    bench._row("results written to", str(path))
    if args.docs:
        case = "competitor" if result["competitor"] else "idle"
        docs = ROOT / "docs" / "_static" / "performance" / f"threads_{cpu['class'].lower()}_{case}.json"
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(json.dumps(result, indent=2, default=float) + "\n")
        bench._row("for the docs", str(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
