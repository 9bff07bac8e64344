"""`Denoiser`'s input: a cube checked and read into canonical axis order, and the Stokes parameters to denoise."""

from __future__ import annotations

import numpy as np
from ndcube import NDCube

from sunpy_nn.cube import find_axes, stokes_labels
from sunpy_nn.nn.lazy import is_dask


class _InputMixin:
    """`Denoiser`'s reading of a cube (for `fit` and `predict`), with the U-Net's ``depth``."""

    depth: int

    def _prepare(self, cube: NDCube, stokes):
        """The cube checked and as ``(axes, canon, labels, selected)``: its axes, its data ``(time, Stokes,
        wavelength, y, x)`` (float32, NaN where masked), its Stokes labels and the indices of ``stokes``."""
        if not isinstance(cube, NDCube):
            raise TypeError(f"Denoiser works on ndcube.NDCube objects, not {type(cube).__name__}")
        axes = find_axes(cube)
        ny, nx, smallest = cube.data.shape[axes.y], cube.data.shape[axes.x], 2 * 2**self.depth
        if min(ny, nx) < smallest:  # e.g. a WCS written in numpy's axis order: torch failed deep inside on 4 x 4 px
            raise ValueError(
                f"The cube's spatial axes (numpy axes {axes.y} and {axes.x}, by its WCS: {axes}) are {ny} x {nx} px; "
                f"the denoiser needs at least {smallest} x {smallest}. If the image is larger, the WCS names the axes "
                "in the wrong order: a WCS lists them in the reverse of numpy's order (ctype[0] is the last numpy "
                "axis, x); see sunpy_nn.cube.find_axes"
            )
        if is_dask(cube.data):
            import dask.array as da

            # Lazy: nothing is read here; frames are read (and checked for infinities) when they are used.
            data = cube.data.astype(np.float32)
            if cube.mask is not None and np.any(cube.mask):
                data = da.where(cube.mask, np.nan, data)
        else:
            data = np.asarray(cube.data, dtype=np.float32)
            if cube.mask is not None and np.any(cube.mask):
                data = np.where(np.asarray(cube.mask, bool), np.nan, data)
            if np.isinf(data).any():
                raise ValueError(
                    f"The cube has {int(np.isinf(data).sum())} infinite values: replace them with NaN or mask them"
                )
        canon = axes.to_canonical(data)
        labels = stokes_labels(cube, axes)
        if axes.stokes is None:
            selected = [0]
        else:
            stokes = tuple(labels) if stokes is None else tuple(stokes)
            if not stokes or len(set(stokes)) < len(stokes):
                raise ValueError(
                    f"stokes must name each Stokes parameter to denoise once, e.g. ('Q', 'U', 'V'), not {stokes!r}; "
                    f"this cube has {labels}"
                )
            unknown = [s for s in stokes if s not in labels]
            if unknown:
                raise ValueError(f"Stokes {unknown} not in this cube, which has {labels}; choose from these")
            selected = [labels.index(s) for s in stokes]
        if not is_dask(canon):  # (a lazy cube's frames are checked as they are read)
            # every Stokes parameter's noise is measured, the ones passed through too: all must hold data
            empty = [labels[s] for s in range(canon.shape[1]) if not np.isfinite(canon[:, s]).any()]
            if empty:  # else the noise estimate failed later, without naming the Stokes parameter
                raise ValueError(
                    f"Stokes {empty} of this cube {'has' if len(empty) == 1 else 'have'} no finite values (all NaN or "
                    "masked), and the noise of every Stokes parameter is measured: slice the cube to the Stokes "
                    "parameters that hold data (an NDCube slice along its Stokes axis) before denoising"
                )
        return axes, canon, labels, selected
