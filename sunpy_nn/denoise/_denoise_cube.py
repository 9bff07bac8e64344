"""`denoise_cube`, the one-call denoising of a cube, and `auto_temporal`, its choice of temporal mode."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ndcube import NDCube

from sunpy_nn.cube import find_axes
from sunpy_nn.denoise._denoiser import Denoiser

__all__ = ["auto_temporal", "denoise_cube"]

log = logging.getLogger(__name__)


def auto_temporal(cube: NDCube) -> int:
    """
    The temporal half-window that `denoise_cube` uses by default (and with ``temporal="auto"``): 2 for five or more
    scans, 1 for three or four, 0 (single-scan mode) for fewer, whether the cube is in memory or dask-backed.

    Parameters
    ----------
    cube : `ndcube.NDCube`
        The cube to denoise.

    Returns
    -------
    int
        The half-window ``k`` of ``Denoiser(temporal=k)``.

    Raises
    ------
    TypeError
        ``cube`` is not an `ndcube.NDCube`.
    ValueError
        The cube's axes cannot be identified (`find_axes`).
    """
    if not isinstance(cube, NDCube):  # find_axes would fail on a missing attribute
        raise TypeError(f"denoising works on ndcube.NDCube objects, not {type(cube).__name__}")
    axes = find_axes(cube)
    n_t = 1 if axes.time is None else cube.data.shape[axes.time]
    if n_t < 3:
        return 0
    return 1 if n_t < 5 else 2


def _log_temporal_default(temporal: int) -> None:
    """The log line of a temporal mode the user did not ask for (`denoise_cube`, ``sunpy-nn denoise``): what it costs
    and how to avoid it."""
    if temporal:
        log.info(
            "temporal mode (temporal=%d, from the number of scans): each scan predicted from its %d neighbours, "
            "three network runs per frame at prediction; temporal=0 asks for single-scan mode (one run per frame)",
            temporal,
            2 * temporal,
        )


def denoise_cube(
    cube: NDCube,
    *,
    denoiser: Denoiser | str | Path | None = None,
    mode: str | None = None,
    temporal: int | str | None = None,
    spectral_pca: bool | None = None,
    align: bool | None = None,
    noise_per_tuning: bool | None = None,
    epochs: int | None = None,
    patch_size: int | None = None,
    train_precision: str | None = None,
    uncertainty: str | None = "aleatoric",
    stokes=("Q", "U", "V"),
    device=None,
    seed: int | None = None,
    precision: str | None = "float32",
    compile: bool = False,
    progress: bool = True,
) -> NDCube:
    """
    Remove the noise of a spectropolarimetric cube with a network trained on the cube itself (Noise2Noise).

    Parameters
    ----------
    cube : `ndcube.NDCube`
        E.g. a CRISP time series (time x Stokes x wavelength x y x x, in any order; wavelength, Stokes and time
        axes are optional), e.g. from `sunpy_nn.io.read_crisp`. NaN and masked pixels are not used for training
        and stay NaN in the denoised Stokes parameters. A dask-backed cube gives a lazy result (see
        `Denoiser.predict`).
    denoiser : `Denoiser`, str or `pathlib.Path`, optional
        A trained denoiser to use instead of training one, or the file `Denoiser.save` wrote (read with
        `Denoiser.load`); ``mode``, ``temporal``, ``spectral_pca``, ``align``, ``noise_per_tuning``, ``epochs``,
        ``patch_size`` and ``train_precision`` then do not apply and are refused. It warns when this cube's noise
        differs from its training noise by more than 2x.
    mode : {"image", "spectral"}, optional
        See `Denoiser` (default ``"image"``).
    temporal : int or "auto", optional
        Temporal mode (`Denoiser`): the ``2 temporal`` neighbouring scans, aligned onto each scan, predict it, for
        series whose field changes little from scan to scan (it lowered the error by 21-40 % on such cubes, also
        where the scene moved 0.5-1 px per scan; where the field changed ~15 % per scan it raised the rms error of Q
        and U by 8-19 % but halved that of the strongest signals and kept the error bars calibrated; see the
        denoising guide). It runs the network three times per frame at prediction, single-scan mode once (both
        train at about the same cost: the guide's "It costs time"). ``0``: single-scan mode, each scan on its own,
        the faster choice. Default (`None`) and ``"auto"``: `auto_temporal`, 2 for five or more scans, 1 for three or
        four, 0 for fewer.
    spectral_pca : bool, optional
        Denoise each Stokes parameter's spectral principal components instead of its tunings (`Denoiser`; the
        gain measured on kG cubes is in the denoising guide). Default (`None`): on in image mode with two or more
        wavelengths.
    align : bool, optional
        Register the scans onto one another (sub-pixel shifts measured on Stokes I) for the training pairs and
        temporal mode's neighbours (`Denoiser`). Default (`None`): `True`.
    noise_per_tuning : bool, optional
        Give each tuning its own noise level (`Denoiser`): photon noise is lower in a line's core than in the
        continuum. Default (`None`): where the tunings' levels, measured on the scan differences, differ by more than
        25 % (``sunpy_nn.denoise.NOISE_TUNING_SPREAD``).
    epochs : int, optional
        Training epochs of 1,000 patches (default 10).
    patch_size : int, optional
        Training patch edge (default: the paper's 52 pixels, or the largest that fits a smaller image); see
        `Denoiser.fit`.
    train_precision : {"float32", "bfloat16"}, optional
        Arithmetic of the training (`Denoiser.fit`'s ``precision``; default (`None`): ``"float32"``). bfloat16 mixed
        precision trains faster on a CPU with AMX or AVX512-BF16 or a recent GPU, at a slightly higher error: the
        training guide measures both.
    uncertainty : {None, "aleatoric", "total"}
        See `Denoiser.predict`.
    stokes : tuple of str or None
        Stokes parameters to denoise; the others (Stokes I unless listed) are returned bit for bit.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or `None` for the best available.
    seed : int, optional
        For reproducible training.
    precision, compile
        Arithmetic and compilation of the network for prediction; see `Denoiser.predict`.
    progress : bool
        Show progress bars.

    Returns
    -------
    `ndcube.NDCube`
        A new cube of the input's shape with identical WCS, unit, mask, metadata (same type, plus the provenance
        under ``meta["sunpy_nn"]``), extra and global coordinates, and the denoised data in the cube's unit. Its
        ``uncertainty`` is a `~astropy.nddata.StdDevUncertainty`: one standard deviation of each denoised value, in
        the cube's unit (the aleatoric error, or with ``uncertainty="total"`` also the epistemic one; Stokes
        parameters not denoised keep the cube's own uncertainty, or get the noise level estimated on the cube, per
        tuning where the tunings' levels differ; no uncertainty with ``uncertainty=None``; see `Denoiser.predict`).
        The input cube is not modified.

    Raises
    ------
    TypeError
        ``cube`` is not an `ndcube.NDCube`, or ``denoiser`` neither a `Denoiser` nor a path.
    WeightsError
        ``denoiser`` is a path whose file is missing, corrupt or not a saved denoiser (`Denoiser.load`).
    ValueError
        An argument out of range, or a training option given with ``denoiser`` (all checked before training); a cube
        whose axes cannot be identified (`~sunpy_nn.cube.find_axes`), without the Stokes parameters asked for, with
        infinite values, or too small for the patch size.
    RuntimeError
        ``device="cuda"`` where torch sees no CUDA GPU.

    Warns
    -----
    SunpyNNUserWarning
        With ``denoiser``: this cube's noise differs from the denoiser's training noise by more than a factor 2.

    References
    ----------
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: the method (Noise2Noise on consecutive
      scans, their Sect. 2), the networks (Tables B.1 and B.2) and the uncertainty (Sect. 3.1.1, the aleatoric loss
      of their Eq. 1). The residual form, the symmetric and temporal Noise2Noise pairs and the calibration are this
      package's (see the denoising guide).
    - Lehtinen, J., Munkberg, J., Hasselgren, J., et al. 2018, "Noise2Noise: Learning Image Restoration without
      Clean Data", ICML, PMLR 80, 2965.

    Examples
    --------
    >>> from sunpy_nn import denoise_cube
    >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
    >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=3, n_scans=3, seed=0)
    >>> clean = denoise_cube(cube, epochs=1, seed=0, progress=False)  # short, for the example
    >>> clean.meta["sunpy_nn"]["temporal"]  # three scans: each predicted from its two neighbours (the default)
    1
    """
    predict_args = (stokes, None, uncertainty, 20, device, seed, precision, compile, progress)
    if isinstance(denoiser, str | os.PathLike):
        denoiser = Denoiser.load(denoiser)
    elif denoiser is not None and not isinstance(denoiser, Denoiser):
        raise TypeError(
            f"denoiser must be a trained Denoiser or the path of one saved with Denoiser.save, not "
            f"{type(denoiser).__name__}"
        )
    if denoiser is not None:
        given = {
            "epochs": epochs,
            "patch_size": patch_size,
            "temporal": temporal,
            "spectral_pca": spectral_pca,
            "align": align,
            "noise_per_tuning": noise_per_tuning,
            "train_precision": train_precision,
        }
        given = [k for k, v in given.items() if v is not None]
        if mode is not None and mode != denoiser.mode:
            given.append(f"mode={mode!r} (the denoiser's is {denoiser.mode!r})")
        if given:
            raise ValueError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only when training, and denoiser= "
                "is given: it is used as it is. "
                "Leave them out, or continue its training first: denoiser.fit(cube, epochs=...)"
            )
        return denoiser.predict(
            cube,
            stokes=stokes,
            uncertainty=uncertainty,
            device=device,
            seed=seed,
            precision=precision,
            compile=compile,
            progress=progress,
        )
    if temporal is None or temporal == "auto":  # measured better than one scan where scans exist (issue 14)
        temporal = auto_temporal(cube)
        _log_temporal_default(temporal)
    denoiser = Denoiser(
        mode="image" if mode is None else mode,
        temporal=temporal,
        spectral_pca=spectral_pca,
        align=True if align is None else align,
        noise_per_tuning=noise_per_tuning,
    )
    # the prediction's arguments are checked before the (long) training
    denoiser._check_predict_args(uncertainty, 20, None, seed, precision, trained=False)  # before training
    denoiser.fit(
        cube,
        epochs=10 if epochs is None else epochs,
        patch_size=patch_size,
        stokes=stokes,
        seed=seed,
        device=device,
        progress=progress,
        precision="float32" if train_precision is None else train_precision,
    )
    # the noise levels fit just estimated on this very cube
    return denoiser._predict(cube, *predict_args, noise=dict(denoiser.noise))
