"""The denoiser's reproducibility and its errors: seeded Monte-Carlo uncertainty of lazy cubes, untrained use."""

import numpy as np
import pytest
from ndcube import NDCube

from sunpy_nn import Denoiser

from .helpers import assert_close_ulps
from .test_denoise import TRUTH, noisy_cube

da = pytest.importorskip("dask.array", reason="dask is an optional dependency: pip install 'sunpy-nn[dask]'")


def test_seeded_mc_dropout_of_a_lazy_cube_is_reproducible_under_threads():
    cube = noisy_cube(TRUTH[:3])
    den = Denoiser().fit(cube, epochs=1, patches_per_epoch=40, patch_size=32, seed=0, progress=False)
    lazy = NDCube(da.from_array(np.asarray(cube.data), chunks=(1, 1, 1, 64, 64)), wcs=cube.wcs, unit=cube.unit)
    runs = []
    for _ in range(3):
        out = den.predict(lazy, uncertainty="total", mc_samples=4, seed=3, progress=False)
        runs.append(np.asarray(out.uncertainty.array.compute(scheduler="threads", num_workers=4)))
    # Before the blocks took turns, their dropout draws mixed between threads: the runs differed by far more.
    for other in runs[1:]:
        assert_close_ulps(other, runs[0])


def test_provenance_of_an_untrained_denoiser_says_what_to_do():
    with pytest.raises(ValueError, match=r"not trained: call fit\(cube\) or Denoiser.load\(path\)"):
        Denoiser().provenance()
