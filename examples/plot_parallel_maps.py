"""
=====================================================
Process a sequence of maps in parallel with dask
=====================================================

`sunpy_nn.enhance_map` takes a list of FITS files (or maps, or a `~sunpy.map.MapSequence`) and runs each map as
one dask task: on dask's threads, on worker processes, or on a ``dask.distributed`` cluster, from a laptop to an
HPC machine. Each worker loads the network once. With ``output_dir=`` each result is written by the worker that
made it and only its file name comes back, so the client's memory stays flat. A map that fails (here, a corrupt
file) is reported on its own and does not stop the others.

This example makes six synthetic HMI-like continuum cut-outs (`sunpy_nn.data.synthetic.synthetic_hmi_map`),
writes them as FITS files, enhances them serially and on a two-worker dask cluster, checks that the results are
the same, and shows them. See :ref:`sunpy_nn-scaling` for clusters, GPUs and sizing.
"""

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sunpy.map
from dask.distributed import Client, LocalCluster

from sunpy_nn import enhance_map
from sunpy_nn.data.synthetic import synthetic_hmi_map
from sunpy_nn.parallel import BatchError

###############################################################################
# Six maps as files
# -----------------
# A real run would list e.g. a day of ``hmi.ic_45s`` files; the workers read them, so only names travel.

folder = Path(tempfile.mkdtemp())
files = []
for i in range(6):
    hmi, _ = synthetic_hmi_map((96, 96), obstime=f"2024-05-01T12:{i:02d}:00", seed=i)
    files.append(folder / f"hmi_ic_{i}.fits")
    hmi.save(files[-1])

###############################################################################
# Serially, in this process
# -------------------------
# Without an active dask client and without ``scheduler=``, the maps are enhanced one after the other.

enhance_map(files[:1], progress=False)  # load the weights once, so that the timings compare the runs
t0 = time.perf_counter()
serial = enhance_map(files, progress=False)
t_serial = time.perf_counter() - t0
print(f"serial: {len(serial)} maps in {t_serial:.1f} s")

###############################################################################
# On a dask cluster
# -----------------
# Any active `~distributed.Client` is used. Here a local cluster of two workers; ``processes=True`` (one process
# per core) is the best layout for CPU work outside this documentation build. The results are written to
# ``output_dir`` on the workers and only the paths come back.

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
client = Client(cluster)
t0 = time.perf_counter()
paths = enhance_map(files, output_dir=folder / "enhanced", progress=False)
t_cluster = time.perf_counter() - t0
print(f"cluster: {len(paths)} maps in {t_cluster:.1f} s -> {Path(paths[0]).name}, ...")
parallel = [sunpy.map.Map(p) for p in paths]
worst = max(float(np.max(np.abs(a.data - b.data))) for a, b in zip(serial, parallel, strict=True))
print(f"largest difference to the serial results: {worst:.3g} DN/s")

###############################################################################
# A corrupt file fails alone
# --------------------------
# The batch goes on; a `~sunpy_nn.batch.BatchError` lists each failure and holds the other results.

broken = folder / "broken.fits"
broken.write_bytes(files[0].read_bytes()[:4000])  # a truncated download
try:
    enhance_map([files[0], broken, files[1]], output_dir=folder / "retry", progress=False)
except BatchError as err:
    print(err)
    print("results kept:", [None if r is None else Path(r).name for r in err.results])
client.close()
cluster.close()

###############################################################################
# The maps and their enhanced versions
# ------------------------------------
# Each map is 48 arcsec across; all are shown divided by the quiet-Sun level of the first, on one scale.

fig, axes = plt.subplots(4, 3, figsize=(10, 12), layout="constrained")
qs = float(np.median(sunpy.map.Map(files[0]).data))  # quiet-Sun level of the first map, for one common scale
vmin, vmax = np.percentile(np.stack([m.data for m in parallel]) / qs, [0.5, 99.5])
for i, (path, out) in enumerate(zip(files, parallel, strict=True)):
    original = sunpy.map.Map(path)
    row, col = 2 * (i // 3), i % 3
    for ax, m, label in (
        (axes[row, col], original, 'HMI-like, 0.504"/pix'),
        (axes[row + 1, col], out, 'enhanced, 0.252"/pix'),
    ):
        im = ax.imshow(m.data / qs, origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_title(f"{original.date.strftime('%H:%M')} {label}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
fig.colorbar(im, ax=axes, label="I / Ic", shrink=0.6)
same = "same results" if worst == 0 else f"results differ by up to {worst:.3g} DN/s"
fig.suptitle(f"6 maps: serial {t_serial:.1f} s, 2-worker dask cluster {t_cluster:.1f} s ({same})")

# sphinx_gallery_thumbnail_number = 1
plt.show()
