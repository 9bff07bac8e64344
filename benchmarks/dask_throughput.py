"""
Throughput of `enhance_map` over many maps: serial, dask threads, and a 2-process dask LocalCluster.

Prints maps/minute for each, the per-map cost and the transfer sizes that go into the scaling model of
``docs/guide/scaling.rst``, and writes ``benchmarks/results/dask_throughput.json``.

    python benchmarks/dask_throughput.py                # 6 maps of 1024 x 1024 (about 2 minutes on 2 cores)
    python benchmarks/dask_throughput.py --size 512     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import sunpy.map
import torch
from astropy.coordinates import SkyCoord
from sunpy.coordinates import frames

from sunpy_nn import SunpyNNUserWarning, enhance_map


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
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{args.maps} maps of {args.size}x{args.size}, {cores} cores, torch {torch.__version__}")
    warnings.simplefilter("ignore", SunpyNNUserWarning)
    results: dict = {"maps": args.maps, "size": args.size, "cores": cores, "load_avg_start": os.getloadavg()[0]}
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
    per_mpix_core = times["serial"] / args.maps / mpix * cores
    print("\nscaling model")
    print(
        f"  per-map cost: {times['serial'] / args.maps:.2f} s for {mpix:.2f} Mpix on {cores} cores "
        f"= {per_mpix_core:.2f} core-s per input Mpix"
    )
    full_disk = per_mpix_core * 4096**2 / 1e6
    print(
        f"  full disk (4096^2, 16.8 Mpix): {full_disk:.0f} core-s; 1,920 maps (one day at 45 s cadence): "
        f"{1920 * full_disk / 3600:.0f} core-hours"
    )
    print(
        f"  transfer per map: input file {in_bytes / 2**20:.1f} MiB, output file {out_bytes / 2**20:.1f} MiB "
        f"(x4 pixels; a full-disk output is {4 * 8192**2 / 2**20:.0f} MiB in float32)"
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


if __name__ == "__main__":
    main()
