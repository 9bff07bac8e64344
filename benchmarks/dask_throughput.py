"""
Throughput of `enhance_map` over many maps: serial, dask threads, and a 2-process dask LocalCluster.

Prints maps/minute for each, the per-map cost and the transfer sizes that go into the scaling model of
``docs/guide/scaling.rst``, and writes ``benchmarks/results/dask_throughput.json``.

    python benchmarks/dask_throughput.py                # 6 maps of 1024 x 1024 (about 2 minutes on 2 cores)
    python benchmarks/dask_throughput.py --size 512     # quicker
    python benchmarks/dask_throughput.py --docs         # also docs/_static/scaling/dask_throughput.json

With ``--docs`` the results (with the sunpy_nn version, the date and the CPU) are also written to
``docs/_static/scaling/dask_throughput.json``, from which the docs build writes the scaling guide's table and
scaling model. Leave torch's threads to the package (no ``OMP_NUM_THREADS``): the serial run is meant to use
every core.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# The package of this checkout, whether or not (or wherever else) sunpy_nn is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import astropy.units as u
import numpy as np
import sunpy.map
import torch
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

import sunpy_nn
from sunpy_nn import SunpyNNUserWarning, enhance_map

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "_static" / "scaling" / "dask_throughput.json"
FULL_DISK = 4096  # edge of an HMI full disk (input pixels)
MAPS_PER_DAY = 1920  # HMI's 45 s cadence


def _cpu_info() -> dict:
    """The CPU as ``benchmarks/run.py`` reports it: model, flags, class (AVX2 or AVX-512), usable CPUs."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cpu_info()


def make_maps(folder: Path, n: int, size: int) -> list[Path]:
    """HMI-like continuum cut-outs (granulation-like noise at I/Ic ~ 1) written as FITS files."""
    files = []
    for i in range(n):
        rng = np.random.default_rng(i)
        data = (1 + 0.04 * rng.standard_normal((size, size))).astype(np.float32) * 5.0e4  # DN/s
        obs = SkyCoord(0 * u.arcsec, 0 * u.arcsec, obstime="2014-03-01", observer="earth", frame=frames.Helioprojective)
        header = sunpy.map.make_fitswcs_header(
            data, obs, scale=[0.504, 0.504] * u.arcsec / u.pix, telescope="SDO/HMI", instrument="HMI_SIDE1"
        )
        header["content"] = "CONTINUUM INTENSITY"
        files.append(folder / f"hmi_ic_{i:03d}.fits")
        sunpy.map.Map(data, header).save(files[-1])
    return files


def timed(label: str, fn) -> float:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"  {label:<34s} {dt:8.1f} s")
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, default=6)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--docs", action="store_true", help=f"also write {DOCS.relative_to(ROOT)} for the docs")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    cpu = _cpu_info()
    print(f"{args.maps} maps of {args.size}x{args.size}, {cores} cores, torch {torch.__version__}")
    print(f"CPU: {cpu['model']} ({cpu['class']} class)")
    warnings.simplefilter("ignore", SunpyNNUserWarning)
    results: dict = {
        "sunpy_nn_version": sunpy_nn.__version__,  # which code made it (the docs table made from it checks this)
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "torch": torch.__version__,
        "maps": args.maps,
        "size": args.size,
        "cores": cores,
        "load_avg_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = make_maps(tmp, args.maps, args.size)
        enhance_map(files[:1], output_dir=tmp / "warm", progress=False)  # weights load + first-call overheads

        times = {}
        # torch's threads: the package's thread policy (or OMP_NUM_THREADS), as a user gets them
        times["serial"] = timed(
            f"serial (one process, {torch.get_num_threads()} threads)",
            lambda: enhance_map(files, scheduler="serial", output_dir=tmp / "s", progress=False),
        )
        results["serial_threads"] = torch.get_num_threads()
        times["threads"] = timed(
            f"dask threads ({cores} workers)",
            lambda: enhance_map(files, scheduler="threads", output_dir=tmp / "t", progress=False),
        )
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
        startup = time.perf_counter() - t0
        print(f"  {'LocalCluster start-up':<34s} {startup:8.1f} s")
        times["cluster_first"] = timed(
            "2-process LocalCluster (1st batch)", lambda: enhance_map(files, output_dir=tmp / "c1", progress=False)
        )
        times["cluster"] = timed(
            "2-process LocalCluster (warm)", lambda: enhance_map(files, output_dir=tmp / "c2", progress=False)
        )
        client.close()
        cluster.close()

        in_bytes = files[0].stat().st_size
        out_bytes = next((tmp / "s").iterdir()).stat().st_size
    print("\nthroughput")
    for k, dt in times.items():
        print(f"  {k:<16s} {60 * args.maps / dt:7.2f} maps/min   {dt / args.maps:6.2f} s/map")
    mpix = args.size**2 / 1e6
    # core-seconds: the serial run's time times the torch threads it ran on (its cores)
    serial_cores = results["serial_threads"]
    per_mpix_core = times["serial"] / args.maps / mpix * serial_cores
    print("\nscaling model")
    print(
        f"  per-map cost: {times['serial'] / args.maps:.2f} s for {mpix:.2f} Mpix on {serial_cores} cores "
        f"= {per_mpix_core:.2f} core-s per input Mpix"
    )
    full_disk = per_mpix_core * FULL_DISK**2 / 1e6
    print(
        f"  full disk ({FULL_DISK}^2, {FULL_DISK**2 / 1e6:.1f} Mpix): {full_disk:.0f} core-s; {MAPS_PER_DAY} maps "
        f"(one day at 45 s cadence): {MAPS_PER_DAY * full_disk / 3600:.0f} core-hours"
    )
    print(
        f"  transfer per map: input file {in_bytes / 2**20:.1f} MiB, output file {out_bytes / 2**20:.1f} MiB "
        f"(x4 pixels; a full-disk output is {4 * (2 * FULL_DISK) ** 2 / 2**20:.0f} MiB in float32)"
    )
    results.update(
        times=times,
        startup=startup,
        in_bytes=in_bytes,
        out_bytes=out_bytes,
        core_s_per_mpix=per_mpix_core,
        load_avg_end=os.getloadavg()[0],
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "dask_throughput.json").write_text(json.dumps(results, indent=2))
    print(
        f"\nload average {results['load_avg_start']:.2f} -> {results['load_avg_end']:.2f}; "
        f"wrote {out / 'dask_throughput.json'}"
    )
    if args.docs:
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"for the docs: {DOCS}")


if __name__ == "__main__":
    main()
