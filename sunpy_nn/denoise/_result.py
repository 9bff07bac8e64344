"""The denoised cube: data and uncertainty in the input's order and type, everything else kept, and provenance."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
from astropy.nddata import StdDevUncertainty
from ndcube import NDCube

from sunpy_nn.cube import _copy_coords, _stddev  # noqa: F401 (_stddev: imported from here by the denoiser)
from sunpy_nn.header import provenance
from sunpy_nn.nn.lazy import is_dask

log = logging.getLogger(__name__)


def _assemble(planes: list, dtype, lazy: bool):
    """Stack Stokes planes ``(T, W, Y, X)`` into a canonical ``(T, S, W, Y, X)`` array of ``dtype``."""
    if lazy:
        import dask.array as da

        return da.stack([da.asarray(p).astype(dtype) for p in planes], axis=1)
    out = np.empty((planes[0].shape[0], len(planes), *planes[0].shape[1:]), dtype)
    for s, p in enumerate(planes):
        out[:, s] = p  # values converted exactly: the output type holds the input's
    return out


def _full(shape, value: float, dtype, lazy: bool):
    if lazy:
        import dask.array as da

        return da.full(shape, value, dtype=dtype)
    return np.full(shape, value, dtype=dtype)


def _weights_sha256(model) -> str:
    """SHA-256 of a network's weights (names, shapes and values in order): the same for any copy of them."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


class _ResultMixin:
    """`Denoiser.predict`'s output cube, with the denoiser's `~Denoiser.provenance`."""

    def _result(
        self, cube, axes, den, sd, labels, selected, uncertainty, noise, tunings=None, passing=None, given=None
    ) -> NDCube:
        """
        The output cube: denoised Stokes parameters from ``den``/``sd`` (canonical, selected Stokes only), the
        others and everything else (mask, meta and its type, psf, extra and global coordinates) from ``cube``.
        ``tunings``: the noise profiles prediction applied (`None`: none), recorded as ``noise_tunings``;
        ``passing``: the cube's own profiles of Stokes parameters not denoised, whose uncertainty (the noise level,
        where the cube has none) they shape across the tunings, recorded as ``noise_tunings_of_input``;
        ``given``: the cube's own uncertainty as `_stddev` gives it (canonical), kept for the Stokes parameters not
        denoised (`None`: none).
        """
        passing = passing or {}
        lazy = is_dask(den)
        n_s = len(labels)
        index = {s: k for k, s in enumerate(selected)}
        dtype = np.result_type(np.dtype(cube.data.dtype), np.float32)
        original = axes.to_canonical(cube.data)
        data = _assemble([den[:, index[s]] if s in index else original[:, s] for s in range(n_s)], dtype, lazy)
        unc = None
        if uncertainty:
            planes = []
            for s in range(n_s):
                if s in index:
                    planes.append(sd[:, index[s]])
                elif given is not None:
                    planes.append(given[:, s])
                else:  # the noise level where there is a value; NaN where the data are NaN, as in Q, U and V
                    plane = _full(original[:, s].shape, noise[labels[s]], dtype, lazy)
                    if labels[s] in passing:  # photon noise, say: the level of each tuning
                        plane = plane * np.asarray(passing[labels[s]], dtype)[:, None, None]
                    planes.append(np.where(np.isnan(original[:, s]), np.nan, plane).astype(dtype))
            unc = StdDevUncertainty(axes.from_canonical(_assemble(planes, dtype, lazy)), unit=cube.unit)
        meta = copy.deepcopy(cube.meta) if cube.meta is not None else {}
        # The one provenance convention (sunpy_nn.header): software, method, model name and SHA-256, settings.
        record = self.provenance()
        model = record.pop("model")
        provenance(
            meta,
            method=record.pop("method"),
            # the name as the registry gives it (the file's stem), as for Enhance
            model_info={
                "name": model["file"] and Path(model["file"]).stem,
                "sha256": model.get("file_sha256"),
                **model,
            },
            settings={k: v for k, v in record.items() if k != "software"}
            | {
                "denoised_stokes": [labels[s] for s in selected],
                # a denoised Stokes parameter's level is its median tuning's where it has a level per tuning
                "noise_of_input": {labels[s]: noise[labels[s]] for s in range(n_s)},
                "noise_tunings": tunings or None,
                "noise_tunings_of_input": passing or None,
                "uncertainty": uncertainty,
            },
        )
        mask = None if cube.mask is None else copy.deepcopy(cube.mask)
        out = NDCube(
            axes.from_canonical(data),
            wcs=cube.wcs,
            uncertainty=unc,
            mask=mask,
            meta=meta,
            unit=cube.unit,
            psf=copy.deepcopy(cube.psf),
        )
        return _copy_coords(cube, out)
