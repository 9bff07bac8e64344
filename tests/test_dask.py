"""Scale-out with dask: map batches on a 2-process LocalCluster, lazy images and lazy cubes."""

import contextlib
import tracemalloc
import warnings

import astropy.units as u
import dask
import numpy as np
import pytest
import sunpy.map
import torch
from ndcube import NDCube

da = pytest.importorskip("dask.array", reason="dask is an optional dependency: pip install 'sunpy-nn[dask]'")
distributed = pytest.importorskip("distributed", reason="dask.distributed is part of the [dask] extra")

from sunpy_nn import (  # noqa: E402
    Denoiser,
    SunpyNNUserWarning,
    enhance,
    enhance_map,
    parallel,
)
from sunpy_nn.batch import run_batch  # noqa: E402
from sunpy_nn.data import save_weights  # noqa: E402
from sunpy_nn.enhance import enhance_array  # noqa: E402
from sunpy_nn.parallel import BatchError  # noqa: E402

from .helpers import assert_close_ulps, random_enhance_net  # noqa: E402
from .test_denoise import TRUTH, noisy_cube  # noqa: E402
from .test_enhance_map import hmi_map  # noqa: E402

NET = random_enhance_net(depth=1, n_filters=8)


@pytest.fixture(scope="module")
def cluster_client():
    """A LocalCluster of 2 worker processes (1 thread each), as the issue asks; shared by the tests here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def map_files(tmp_path_factory):
    """Six magnetogram files and the weights they are enhanced with."""
    folder = tmp_path_factory.mktemp("maps")
    files = []
    for i in range(6):
        data = np.random.default_rng(i).normal(0, 300, (40, 48))
        data[:4, :6] = np.nan  # a missing corner, kept NaN
        m = hmi_map(data, unit=u.G)
        files.append(folder / f"hmi_m_{i}.fits")
        m.save(files[-1])
    weights = save_weights(NET, folder / "blos_test.pt")
    return files, weights


def serial(files, weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyNNUserWarning)
        return enhance_map(files, weights=weights, kind="blos", scheduler="serial", progress=False)


def test_enhance_files_on_local_cluster_equal_serial(cluster_client, map_files):
    files, weights = map_files
    reference = serial(files, weights)
    assert isinstance(reference, list) and len(reference) == len(files)
    cluster_client.run(lambda: setattr(enhance, "_MODEL_LOADS", 0) or enhance._MODELS.clear())
    # the active client is picked up without scheduler=
    out = enhance_map(files, weights=weights, kind="blos", progress=False)
    assert [o.data.shape for o in out] == [(80, 96)] * len(files)
    for ref, got in zip(reference, out, strict=True):
        assert_close_ulps(got.data, ref.data)  # NaN at the same places; workers run other torch thread counts
        assert got.meta["snnsha"] == ref.meta["snnsha"] and got.reference_coordinate == ref.reference_coordinate
    # each worker process loaded the model once for its three maps, not once per map
    loads = cluster_client.run(lambda: enhance._MODEL_LOADS)
    assert sorted(loads.values()) == [1, 1] or sum(loads.values()) == 1


def test_corrupt_file_fails_alone(cluster_client, map_files, tmp_path):
    files, weights = map_files
    bad = tmp_path / "corrupt.fits"
    bad.write_bytes(files[0].read_bytes()[:3000])  # a truncated FITS file
    batch = [files[0], bad, files[1], tmp_path / "missing.fits"]
    with pytest.raises(BatchError) as err:
        enhance_map(batch, weights=weights, kind="blos", progress=False)
    assert [f.index for f in err.value.failures] == [1, 3]
    assert "corrupt.fits" in str(err.value) and "missing.fits" in str(err.value)
    assert err.value.results[1] is None and err.value.results[3] is None
    assert err.value.results[0].data.shape == (80, 96) and err.value.results[2].data.shape == (80, 96)
    with pytest.warns(SunpyNNUserWarning, match="corrupt.fits"):
        kept = enhance_map(batch, weights=weights, kind="blos", progress=False, errors="warn")
    assert len(kept) == 2


def test_output_dir_bounds_client_memory(cluster_client, map_files, tmp_path):
    weights = map_files[1]
    big = []
    for i in range(6):  # results of 4 MB each: 24 MB if they came back to the client
        m = hmi_map(np.random.default_rng(i).normal(0, 300, (512, 512)).astype(np.float32), unit=u.G)
        big.append(tmp_path / f"big_{i}.fits")
        m.save(big[-1])
    tracemalloc.start()
    paths = enhance_map(big, weights=weights, kind="blos", output_dir=tmp_path / "out", progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [p.endswith(f"big_{i}_enhanced.fits") for i, p in enumerate(paths)] == [True] * 6
    assert peak < 4 * 2**20, f"client peak {peak / 2**20:.1f} MiB: results came back to the client"
    back = sunpy.map.Map(paths[2])
    assert back.data.shape == (1024, 1024) and back.meta["snnmodel"] == "blos_test"
    with pytest.raises(BatchError, match="exists"):  # no silent overwrite
        enhance_map(big[:1], weights=weights, kind="blos", output_dir=tmp_path / "out", progress=False)


def test_inputs_with_the_same_file_name_are_refused_before_any_work(map_files, tmp_path):
    """a/hmi.fits and b/hmi.fits wrote one file, holding b's map, and returned its path for both (a new user)."""
    files, weights = map_files
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "hmi.fits").write_bytes(files[0].read_bytes())
    same = [tmp_path / "a" / "hmi.fits", tmp_path / "b" / "hmi.fits"]
    with pytest.raises(ValueError, match=r"same file in .*hmi_enhanced.fits"):
        enhance_map(same, weights=weights, kind="blos", output_dir=tmp_path / "out", overwrite=True, progress=False)
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_refused_before_its_map_is_enhanced(map_files, tmp_path, monkeypatch):
    """Resuming a batch recomputed every map, then refused to save it: the check now comes first."""
    from sunpy_nn.enhance import _batch

    files, weights = map_files
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hmi_m_0_enhanced.fits").write_bytes(b"")
    calls = []
    real = _batch._enhance_one
    monkeypatch.setattr(_batch, "_enhance_one", lambda *a: calls.append(1) or real(*a))
    with pytest.raises(BatchError, match="exists: pass overwrite=True") as err:
        enhance_map(
            files[:2], weights=weights, kind="blos", output_dir=tmp_path / "out", scheduler="serial", progress=False
        )
    assert len(calls) == 1 and err.value.results[0] is None and err.value.results[1].endswith("hmi_m_1_enhanced.fits")


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_local_schedulers_equal_serial(map_files, scheduler):
    files, weights = map_files
    reference = serial(files[:3], weights)
    seq = sunpy.map.Map([sunpy.map.Map(f) for f in files[:3]], sequence=True)
    out = enhance_map(seq, weights=weights, kind="blos", scheduler=scheduler, num_workers=2, progress=False)
    assert isinstance(out, sunpy.map.MapSequence)
    for ref, got in zip(reference, out, strict=True):
        assert_close_ulps(got.data, ref.data)


def test_bad_scheduler_names():
    with pytest.raises(ValueError, match="scheduler must be"):
        parallel.resolve_scheduler("gpu")
    with pytest.raises(ValueError, match="errors must be"):
        enhance_map([hmi_map(np.zeros((20, 20)), unit=u.G)], weights=NET, errors="ignore")


def test_large_image_as_dask_array_equals_in_memory(cluster_client):
    rng = np.random.default_rng(0)
    img = rng.normal(1, 0.05, (300, 260)).astype(np.float32)
    yy, xx = np.mgrid[:300, :260]
    img[(yy - 150) ** 2 + (xx - 130) ** 2 > 120**2] = np.nan  # an off-disk corner region
    reference = enhance_array(img, NET, progress=False)
    lazy = enhance_array(da.from_array(img, chunks=(100, 90)), NET)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((200, 200, 200), (180, 180, 160))
    out = lazy.compute()  # on the 2-process cluster
    assert_close_ulps(out, reference)  # NaN at the same places, values to rounding


def _cpus_for_the_policy(monkeypatch, n: int) -> None:
    from sunpy_nn.nn import device

    monkeypatch.setattr(device, "choose_threads", lambda cpus=None, busy=None: n)
    device._STATE.choice = None  # decided again (the policy fixture puts the state back)


@pytest.fixture
def plenty_of_memory(monkeypatch):
    """The cut's memory bound out of the way: the machine's free memory must not decide a test's block count."""
    from sunpy_nn.nn import lazy

    monkeypatch.setattr(lazy, "_available_memory", lambda: 1 << 50)


@pytest.mark.parametrize("cpus", [2, 4])
def test_a_lazy_image_of_one_chunk_is_cut_into_one_block_per_cpu(policy, monkeypatch, plenty_of_memory, cpus):
    # Rule 4 runs each dask thread on one torch thread: one chunk would leave all CPUs but one idle.
    img = np.random.default_rng(1).normal(1, 0.05, (600, 560)).astype(np.float32)
    img[280:320, 250:300] = np.nan  # missing pixels across the cuts (y=300, x=280): filled as in memory
    reference = enhance_array(img, NET, progress=False)
    _cpus_for_the_policy(monkeypatch, cpus)
    lazy = enhance_array(da.from_array(img), NET)  # dask makes this one chunk
    assert da.from_array(img).npartitions == 1 and lazy.npartitions == cpus
    assert_close_ulps(lazy.compute(scheduler="threads"), reference)


def test_lazy_blocks_follow_the_users_count_and_stop_at_the_smallest_block(policy, monkeypatch):
    from sunpy_nn.nn import device
    from sunpy_nn.nn.lazy import MIN_EDGE, lazy_tiled

    _cpus_for_the_policy(monkeypatch, 8)

    def blocks(shape, depth=4, **kwargs):
        chunks = (1,) * (len(shape) - 2) + (-1, -1)
        fn = lambda b: b  # noqa: E731
        return lazy_tiled(da.zeros(shape, chunks=chunks), fn, depth=depth, fill_cpus=True, **kwargs).npartitions

    assert blocks((4096, 4096)) == 8
    assert blocks((2, 4096, 4096)) == 8  # two leading blocks already: each cut in four
    assert blocks((2 * MIN_EDGE - 2, 2 * MIN_EDGE - 2)) == 1  # halves would be smaller than MIN_EDGE
    assert blocks((1200, 1200), depth=75) == 4  # halves of 600 px hold 8 x the overlap of 75 px, not of 76
    assert blocks((1200, 1200), depth=76) == 1
    assert blocks((4096, 4096), tile=1024) == 16  # an explicit tile is kept
    assert lazy_tiled(da.zeros((4096, 4096)), lambda b: b, depth=4).npartitions == 1  # by default, the chunks
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # 2 torch threads per block: half the blocks
    torch.set_num_threads(2)
    assert blocks((4096, 4096)) == 4
    monkeypatch.delenv("OMP_NUM_THREADS")
    device._STATE.explicit = 4  # configure_threads(4): 4 torch threads per block
    assert blocks((4096, 4096)) == 2
    device._STATE.explicit = None
    with device._threads_during(2):  # a batch on this process's dask threads already shares the CPUs
        assert blocks((4096, 4096)) == 1


def test_lazy_blocks_are_cut_only_as_far_as_the_memory_holds_them(policy, monkeypatch):
    # Each block running at once holds a network's workspace: the cut for the CPUs must not outgrow the memory.
    from sunpy_nn.nn import lazy

    _cpus_for_the_policy(monkeypatch, 8)
    tile = lambda h, w: min(h, 624) * min(w, 624)  # noqa: E731  (bytes: a workspace bounded by a tile, as run_tiled's)

    def blocks(free):
        monkeypatch.setattr(lazy, "_available_memory", lambda: free)
        image = da.zeros((4096, 4096), chunks=-1)
        return lazy.lazy_tiled(image, lambda b: b, depth=4, fill_cpus=True, workspace=tile).npartitions

    assert blocks(None) == 8  # memory unknown: the CPUs decide
    assert blocks(8 * 624 * 624 / lazy.MEMORY_SHARE) == 8
    assert blocks(8 * 624 * 624 / lazy.MEMORY_SHARE - 1) == 4  # 8 blocks would take more than their share
    assert blocks(2 * 624 * 624 / lazy.MEMORY_SHARE) == 2
    assert blocks(1) == 1  # not even two fit: the chunk stays whole, as in memory


def test_the_lazy_paths_give_the_cut_their_networks_workspace(policy, monkeypatch):
    from sunpy_nn.nn import lazy
    from sunpy_nn.nn.runner import PEAK_MAPS, _workspace_bytes

    img = np.ones((600, 560), np.float32)
    _cpus_for_the_policy(monkeypatch, 4)
    monkeypatch.setattr(lazy, "_available_memory", lambda: 1)
    assert enhance_array(da.from_array(img), NET).npartitions == 1  # no memory for a second block
    monkeypatch.setattr(lazy, "_available_memory", lambda: 1 << 40)
    assert enhance_array(da.from_array(img), NET).npartitions == 4
    # The estimate: the network's peak feature maps at the size of a tile, or of a block smaller than a tile.
    one_map = 4 * NET.n_filters  # bytes per pixel of one float32 feature map
    assert _workspace_bytes(NET, (2048, 2048), tile_size=512) == PEAK_MAPS["EnhanceNet"] * one_map * 512 * 512
    assert _workspace_bytes(NET, (300, 2048), tile_size=512) == PEAK_MAPS["EnhanceNet"] * one_map * 300 * 512
    # the plain path holds its maps at the output resolution (scale 2: four times the pixels)
    plain = _workspace_bytes(NET, (300, 300), scale=2, tile_size=512, optimised=False)
    assert plain == 4 * _workspace_bytes(NET, (300, 300), scale=2, tile_size=512)
    # On a GPU the maps are not in the host's memory: no bound, and no GPU needed to build the graph.
    assert _workspace_bytes(NET, (2048, 2048), device="cuda") == 0
    monkeypatch.setattr(lazy, "_available_memory", lambda: 1)
    assert enhance_array(da.from_array(img), NET, device="cuda").npartitions == 4


V1 = "memory/slurm/uid_1/job_7/step_0"  # the process's own v1 memory cgroup in these cases


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "4000\n", "memory.current": "1000\n", "memory.stat": "anon 1\ninactive_file 500\n"}, 3500),
        ({"memory.max": "max\n", "memory.current": "1000\n"}, None),  # cgroup v2 without a limit
        ({"memory/memory.limit_in_bytes": "2000\n", "memory/memory.usage_in_bytes": "1500\n"}, 500),  # v1, its root
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),  # v1 writes "no limit" as a huge number
        # SLURM (v1): the job's cgroup holds the limit, the step's below it none; its stat's inactive cache counts free
        (
            {
                f"{V1}/memory.limit_in_bytes": "9223372036854771712\n",
                f"{V1}/memory.usage_in_bytes": "100\n",
                "memory/slurm/uid_1/job_7/memory.limit_in_bytes": "4000\n",
                "memory/slurm/uid_1/job_7/memory.usage_in_bytes": "1000\n",
                "memory/slurm/uid_1/job_7/memory.stat": "cache 9\ntotal_inactive_file 200\n",
            },
            3200,
        ),
        ({}, None),
    ],
)
def test_cgroup_memory_available(monkeypatch, tmp_path, files, expected):
    from sunpy_nn.nn import device, lazy

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(device, "_CGROUP", tmp_path)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"4:memory:/{V1.split('/', 1)[1]}\n0::/\n")
    monkeypatch.setattr(device, "_PROC_CGROUP", proc)
    assert lazy._cgroup_available() == expected
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000 kB\nMemFree:        1000 kB\nMemAvailable:   3 kB\n")
    monkeypatch.setattr(lazy, "_MEMINFO", meminfo)
    assert lazy._available_memory() == min(3072, expected or 3072)  # the machine's, capped by the cgroup's


def test_cgroup_v2_limit_of_a_parent_caps_the_memory(monkeypatch, tmp_path):
    # cgroup v2 under SLURM or systemd: the job's (or the user slice's) cgroup sets the limit, the process's own none
    from sunpy_nn.nn import device, lazy

    own = tmp_path / "system.slice" / "slurmstepd.scope" / "job_7" / "step_0" / "user" / "task_0"
    own.mkdir(parents=True)
    (own / "memory.max").write_text("max\n")
    (own / "memory.current").write_text("10\n")
    job = own.parents[2]
    (job / "memory.max").write_text("4000\n")
    (job / "memory.current").write_text("1500\n")
    (job / "memory.stat").write_text("anon 1000\ninactive_file 100\n")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::/{own.relative_to(tmp_path)}\n")
    monkeypatch.setattr(device, "_CGROUP", tmp_path)
    monkeypatch.setattr(device, "_PROC_CGROUP", proc)
    assert lazy._cgroup_available() == 2600
    (job / "memory.max").write_text("max\n")
    assert lazy._cgroup_available() is None


def test_lazy_denoising_with_mc_dropout_keeps_its_blocks_whatever_the_cpus(policy, monkeypatch, small_denoiser):
    # MC dropout seeds its draws per block: cut by the CPUs, the same seed would give other values elsewhere
    from sunpy_nn.denoise import _predict
    from sunpy_nn.nn.runner import PEAK_MAPS

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["fill_cpus"])
        unet = small_denoiser.model  # the cut is bounded by the U-Net's workspace (at 64 px, below a tile)
        assert kwargs["workspace"](64, 64) == PEAK_MAPS["UNet"] * 4 * unet.n_filters * 64 * 64
        return real(*args, **kwargs)

    real = _predict.lazy_tiled
    monkeypatch.setattr(_predict, "lazy_tiled", spy)
    cube = noisy_cube(TRUTH[:2])
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 64, 64)), wcs=cube.wcs, unit=cube.unit)
    for uncertainty in ("total", "aleatoric"):
        small_denoiser.predict(lazy, uncertainty=uncertainty, mc_samples=2, seed=0, progress=False)
    assert seen == [False, True]


@pytest.fixture(scope="module")
def small_denoiser():
    return Denoiser().fit(noisy_cube(TRUTH[:4]), epochs=1, patches_per_epoch=40, patch_size=32, seed=0, progress=False)


class CountingArray:
    """An array that counts the bytes read from it (stands in for a file on disk)."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim, self.read = data, data.shape, data.dtype, data.ndim, 0

    def __getitem__(self, key):
        out = self.data[key]
        self.read += out.nbytes
        return out


def test_lazy_cube_prediction_is_lazy_and_equal(cluster_client, small_denoiser):
    cube = noisy_cube(TRUTH[:4])
    reference = small_denoiser.predict(cube, progress=False)
    source = CountingArray(np.asarray(cube.data))
    lazy_cube = NDCube(da.from_array(source, chunks=(1, 1, 1, 64, 64), asarray=False), wcs=cube.wcs, unit=cube.unit)
    out = small_denoiser.predict(lazy_cube, progress=False, tile_size=32)
    assert isinstance(out.data, da.Array) and isinstance(out.uncertainty.array, da.Array)
    assert source.read == 0  # nothing computed yet
    # local threads, so that the reads are counted in this process
    data, sigma = da.compute(out.data, out.uncertainty.array, scheduler="threads")
    assert source.read == np.asarray(cube.data).nbytes  # each frame read once
    np.testing.assert_allclose(data, reference.data, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sigma, reference.uncertainty.array, rtol=0, atol=1e-6)
    # and on the 2-process cluster
    out = small_denoiser.predict(
        NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 64, 64)), wcs=cube.wcs), progress=False
    )
    np.testing.assert_allclose(out.data.compute(), reference.data, rtol=0, atol=1e-6)


def test_training_on_lazy_cube_reads_part_of_it(monkeypatch):
    # 96 scans: training reads a fixed sample (noise levels, pools of frames, the calibration frames, and Stokes I
    # of the scans these hold, to register them), whatever the length of the series, so the part read falls with it
    big = np.concatenate([TRUTH] * 16)
    cube = noisy_cube(big)
    source = CountingArray(np.asarray(cube.data))
    lazy_cube = NDCube(da.from_array(source, chunks=(1, 1, 1, 64, 64), asarray=False), wcs=cube.wcs, unit=cube.unit)
    monkeypatch.setattr("sunpy_nn.training.noise2noise._POOL_BYTES", 8 * 64 * 64 * 4 * 2)  # a pool of 8 frame pairs
    import dask

    with dask.config.set(scheduler="threads"):  # reads in this process, where they are counted
        den = Denoiser().fit(lazy_cube, epochs=3, patches_per_epoch=150, patch_size=32, lr=1e-3, seed=0, progress=False)
    total = np.asarray(cube.data).nbytes
    assert 0 < source.read < total / 2, f"read {source.read / total:.0%} of the cube"
    # the noise levels it found from the scans it read are right (3e-3 injected)
    assert all(abs(v / 3e-3 - 1) < 0.1 for v in den.noise.values())
    out = den.predict(cube, progress=False)
    residual = out.data[:, 1:] - big[:, 1:]
    assert np.std(residual) < 0.7 * np.std(np.asarray(cube.data)[:, 1:] - big[:, 1:])  # it learnt to denoise


def test_worker_warnings_reach_the_caller(map_files):
    """A warning raised in a worker process (pixel scale far from HMI's) is re-issued for its map."""
    weights = map_files[1]
    coarse = hmi_map(np.random.default_rng(0).normal(0, 300, (24, 24)), unit=u.G, scale=1.0)
    fine = hmi_map(np.random.default_rng(1).normal(0, 300, (24, 24)), unit=u.G)
    with pytest.warns(SunpyNNUserWarning, match=r"map 0 .*pixel scale is 1 arcsec/pix") as caught:
        enhance_map([coarse, fine], weights=weights, kind="blos", scheduler="processes", num_workers=2, progress=False)
    assert not any(str(w.message).startswith("map 1") for w in caught)


def test_cluster_workers_take_their_thread_share(cluster_client):
    """The 2 worker processes of the LocalCluster, on this host, share its thread budget (the package's policy)."""
    from sunpy_nn.batch import run_batch
    from sunpy_nn.nn.device import threads_per_task

    def threads(item, index):  # pickled by value: the workers need not import the tests
        import torch

        return torch.get_num_threads()

    out = run_batch(range(4), threads, progress=False)  # on the active client
    assert set(out) == {threads_per_task(2)}


@pytest.mark.parametrize("temporal", [0, 1])
def test_writing_a_lazy_result_runs_the_network_once_per_frame(tmp_path, monkeypatch, temporal):
    """`write_crisp` computes a scan's wavelengths together: a lazy result whose tunings come from one computation
    (spectral components rotated back, a temporal block) runs the network as often as in memory, not once more per
    tuning; the file holds the in-memory result."""
    from sunpy_nn import Denoiser
    from sunpy_nn.data.synthetic import synthetic_crisp_cube
    from sunpy_nn.io import read_crisp, write_crisp

    cube, _ = synthetic_crisp_cube(32, n_wavelengths=4, n_scans=3, seed=2)
    den = Denoiser(n_filters=4, depth=1, temporal=temporal, spectral_pca=True).fit(
        cube, epochs=1, patches_per_epoch=20, patch_size=16, seed=0, progress=False
    )
    calls = []
    real = Denoiser._denoise_frames
    monkeypatch.setattr(Denoiser, "_denoise_frames", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    eager = den.predict(cube, stokes=("V",), progress=False)
    in_memory, calls[:] = len(calls), []
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 32, 32)), wcs=cube.wcs, unit=cube.unit)
    import dask

    with dask.config.set(scheduler="synchronous"):  # in this process, where the network's runs are counted
        path = write_crisp(den.predict(lazy, stokes=("V",), progress=False), tmp_path / "out.fits", progress=False)
    assert len(calls) == in_memory == 3 * 4  # scans x components of Stokes V
    back = read_crisp(path, lazy=False)
    assert_close_ulps(np.asarray(back.data), eager.data, 64)


def test_available_memory_without_proc_meminfo_comes_from_psutil(monkeypatch, tmp_path):
    # macOS and Windows have no /proc/meminfo: psutil's figure where it is installed, else unknown (the CPUs decide)
    import sys
    import types

    from sunpy_nn.nn import lazy

    monkeypatch.setattr(lazy, "_MEMINFO", tmp_path / "missing")
    monkeypatch.setattr(lazy, "_cgroup_available", lambda: None)
    fake = types.SimpleNamespace(virtual_memory=lambda: types.SimpleNamespace(available=12345))
    monkeypatch.setitem(sys.modules, "psutil", fake)
    assert lazy._available_memory() == 12345
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed: import fails
    assert lazy._available_memory() is None


@contextlib.contextmanager
def _own_client(n_workers: int, processes: bool, silence_logs: int = 40):
    """A LocalCluster of a test's own (one thread per worker) and its client: the shared one keeps its workers."""
    with (
        distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            silence_logs=silence_logs,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_a_killed_worker_fails_its_item_not_the_batch():
    """On a cluster, a task whose worker dies (KilledWorker) aborted the batch unnamed: now it is that item's failure
    and the others' results come back. Its own cluster, so that the shared one keeps its workers."""
    from .test_batch import DieOn

    with warnings.catch_warnings(), dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        warnings.simplefilter("ignore")
        with _own_client(2, processes=True, silence_logs=50) as client, pytest.raises(BatchError) as err:
            run_batch([10, 99, 12, 13], DieOn(99), scheduler=client, progress=False, unit="item")
    failed = [f.index for f in err.value.failures]  # the fatal item, and any that its worker held with it
    assert 1 in failed and len(failed) < 4
    for f in err.value.failures:
        assert f.error.startswith("KilledWorker") and "a worker died before this item finished" in f.error
    assert all(r == [10, 99, 12, 13][i] for i, r in enumerate(err.value.results) if i not in failed)


def test_lazy_enhance_fills_sparse_missing_pixels_as_in_memory():
    """A missing pixel in the corner of a valid pixel's receptive field can take its value from a pixel 2.4 radii
    away (the nearest, by Euclidean distance): with blocks extended by twice the radius, the lazy output there was
    0.19 against 0.11 in memory (of a range of 0.125)."""
    net = random_enhance_net(depth=1, n_filters=8)  # receptive radius 5
    rng = np.random.default_rng(0)
    img = np.full((96, 96), np.nan, np.float32)
    img[32:, 40:] = 1 + 0.1 * rng.standard_normal((64, 56))
    img[20, 35] = 1000.0  # the nearest valid pixel of (27, 35), inside the receptive field of (32, 40)
    mem = enhance_array(img, net, progress=False, device="cpu")
    lazy = enhance_array(da.from_array(img, chunks=32), net, progress=False, device="cpu").compute(scheduler="sync")
    assert_close_ulps(lazy, mem, ulps=256)


def test_a_task_that_cannot_be_pickled_is_refused_only_where_workers_are_processes(cluster_client):
    from .test_batch import HoldsALock

    with pytest.raises(TypeError, match=r"\(HoldsALock\) cannot be pickled.*module-level"):
        run_batch([0, 1], HoldsALock(), scheduler=cluster_client, progress=False)
    # workers in this process (processes=False): nothing is pickled, and the task runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _own_client(1, processes=False) as client:
            assert run_batch([0, 1], HoldsALock(), scheduler=client, progress=False) == [0, 1]
