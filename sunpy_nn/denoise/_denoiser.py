"""`Denoiser`: its settings, network and public methods; the work of each is in the mixin of its job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ndcube import NDCube

from sunpy_nn.denoise._calibration import _CalibrationMixin
from sunpy_nn.denoise._files import _FilesMixin
from sunpy_nn.denoise._fit import _FitMixin
from sunpy_nn.denoise._frames import _FramesMixin
from sunpy_nn.denoise._input import _InputMixin
from sunpy_nn.denoise._noise import _NoiseMixin
from sunpy_nn.denoise._predict import _PredictMixin
from sunpy_nn.denoise._result import _ResultMixin, _weights_sha256
from sunpy_nn.denoise._spectral import _SpectralMixin
from sunpy_nn.nn import UNet
from sunpy_nn.utils import _check_int, _check_real

__all__ = ["Denoiser"]


# -------------------------------------------------------------------------------------------------------- Denoiser
# The work of each method is done in the mixin of its job, one private module each (see sunpy_nn.denoise); the
# public methods and their documentation are here.
class Denoiser(
    _FitMixin,
    _CalibrationMixin,
    _NoiseMixin,
    _SpectralMixin,
    _PredictMixin,
    _FramesMixin,
    _InputMixin,
    _ResultMixin,
    _FilesMixin,
):
    """
    A Noise2Noise denoiser for spectropolarimetric cubes that learns from the observation itself.

    Parameters
    ----------
    mode : {"image", "spectral"}
        ``"image"`` denoises each monochromatic image on its own (the paper's main method, independent of the
        spectral line and sampling); ``"spectral"`` takes all wavelengths of a Stokes parameter as channels
        (smoother profiles, but tied to one line and sampling).
    n_filters, depth : int
        U-Net width and depth (32 and 2 in the paper).
    dropout : float
        Monte-Carlo dropout rate for the epistemic uncertainty (0.01 in the paper).
    padding : {"reflect", "zeros"}
        Border handling of the U-Net.
    residual : bool, optional
        The U-Net predicts a correction to its input, so that strong signals pass through; `False` is the paper's
        network (it predicts the image). Default: `True` in image mode, `False` in spectral mode (slower to train).
    temporal : int
        Temporal mode: scan t is predicted from the ``2 temporal`` scans around it (t excluded), and that
        prediction is combined with scan t by inverse-variance weighting. 0 (default): single-scan mode.
    shuffle : int
        Pixel-shuffle down-sampling for single scans with spatially correlated noise: the network trains on and
        denoises each of the ``shuffle x shuffle`` phase images (pixels ``shuffle`` apart), whose noise is nearly
        white. 1 (default): none. On a real MOMFBD-restored CRISP image it removed solar structure with the noise
        (the denoising guide): use it only where the scene is oversampled well beyond the noise correlation.
    align : bool
        Register the scans of a time series onto one another (sub-pixel shifts measured on Stokes I, see Notes)
        before they are paired for training, and temporal mode's neighbouring scans onto scan t. Default: `True`.
    spectral_pca : bool, optional
        Image mode: denoise each Stokes parameter's spectral principal components instead of its tunings (an
        orthonormal rotation of the wavelength axis, fitted on the training cube and stored with the model; see
        Notes). Default (`None`): on in image mode with two or more wavelengths.
    noise_per_tuning : bool, optional
        Give each tuning of a Stokes parameter its own noise level (see Notes, **Scaling**), as photon noise does:
        it is lower in the core of a line than in the continuum. Default (`None`): where the tunings' levels differ
        by more than ``sunpy_nn.denoise.NOISE_TUNING_SPREAD`` (1.25); `True`: always, with two or more scans; `False`:
        one level.

    Raises
    ------
    ValueError
        An unknown mode or padding, a non-positive size, a dropout outside [0, 1), ``temporal`` and
        ``shuffle`` together, ``spectral_pca=True`` in spectral mode, or ``noise_per_tuning`` not `None`, `True` or
        `False`.

    Notes
    -----
    **Pairs.** With a time axis, the input is a patch of scan t and the target the mean of the same patch in
    scans t-1 and t+1 (with two scans: the other scan): their solar signal is nearly the same and their noise
    independent, so the L2 loss has the same minimiser as with clean targets. In temporal mode the input is the
    neighbouring scans and the target scan t. Rotations, flips, time reversal and sign changes (not for Stokes
    I), and in spectral mode wavelength reversal, are the augmentations. Half of the pairs are drawn among
    patches whose pair-averaged, 3x3-smoothed signal exceeds twice the noise somewhere, so that the rare strong
    signals are learnt.

    **Alignment** (``align``). A residual image motion of 0.1-0.2 px between scans (seeing, tracking, the
    reduction's alignment) makes a pair's scans differ at every gradient: kG Stokes V by 0.17 of the noise (rms) on
    the white-noise cube of ``benchmarks/denoise_science.py``, 0.03 once aligned. So each scan's shift onto its
    predecessor is measured on Stokes I averaged over the tunings (windowed cross-correlation, to 0.01 px, with
    `skimage.registration.phase_cross_correlation`), and the scans are shifted onto the middle one by a Fourier
    phase ramp, which keeps the noise's variance and power spectrum. `fit` trains on the aligned scans
    (``fit_settings["scan_shifts"]``); temporal `predict` shifts each neighbouring scan onto scan t, and leaves scan
    t and the output where they were (bands of up to 2 px that a shift brings in take the neighbour's border values).
    The noise that `predict` estimates, and a lazy fit's, comes from sampled pairs of scans registered on their
    Stokes I. A dask-backed cube is not read whole: the stacks of consecutive scans that its training reads (the
    pool, the calibration pairs) are registered as they are read, each step measured once on the two scans' Stokes I
    at up to 3 tunings (``fit_settings["scan_steps"]``). A cube without Stokes I or of one scan is not aligned. A
    shift is global, so differential motion (e.g. seeing across the field) stays; a scan whose Stokes I correlates
    with the one before by less than 0.5 (no structure above the noise) keeps its place, with a logged warning.

    **One scan.** Without a time axis (or with a single scan), pairs come from neighbour sub-sampling
    (Neighbor2Neighbor, Huang et al. 2021): two half-resolution images made of adjacent pixels of each 2x2 cell.
    It needs no masking, trains with the same loss and loop, and works for noise that is independent from pixel
    to pixel; spatially correlated noise (e.g. after MOMFBD) is partly kept, so prefer a time series then.

    **Scaling.** Each Stokes parameter is divided by its noise level (`estimate_noise`: temporal for Q, U, V at
    weakly polarised pixels, cross-calibrated for I, spatial for one scan), stored with the model and multiplied back
    on output. With two or more scans, the level of each tuning relative to the median one is measured first (the
    robust std of the Immerkaer-filtered differences of consecutive scans, which leaves out most of the solar signal
    and its evolution; Q, U and V share the median of their profiles); where these differ (``noise_per_tuning``),
    each tuning is divided by its relative level (``noise_tunings``) before anything else, so that the network, the
    spectral basis and the calibration see noise of one level; the denoised values and their uncertainty are
    multiplied by it on output (the uncertainty of Stokes parameters not denoised by their own). ``noise`` is the
    median tuning's level. One scan keeps one level (a spatial estimate reads the line as noise), a warm start its own.

    **Spectral principal components.** In image mode each Stokes parameter's spectra are first rotated onto their
    principal components (eigenvectors of the second-moment matrix of the training cube's spectra in noise units;
    spectral PCA as in Rees et al. 2000). An orthonormal rotation keeps noise independent between tunings and of one
    level so, but concentrates the solar signal in a few leading components, far above the noise, and leaves almost pure
    noise in the others, which the network removes nearly entirely. The denoised components are rotated back, and their
    variances with them (``sum_c basis[w, c]^2 var_c``, errors taken as independent); the figures are in the denoising
    guide. A spectrum NaN at some wavelengths is left out of training; for prediction it is filled there from the
    components fitted to its other wavelengths (gappy PCA, regularised by the components' eigenvalues), and is NaN there
    again on output. The rotation assumes noise of one level at every tuning (hence the levels per tuning of
    **Scaling**). A dask-backed cube is rotated lazily: its basis comes from a sample (4 scans, every other pixel), and
    the training pool reads whole spectra. The basis fixes the number of wavelengths (and assumes the same spectral
    line and sampling) of the cubes the denoiser applies to.

    **Uncertainty.** The variance head (softplus, fed the input and the detached denoised image) learns the aleatoric
    error of the denoised value with the loss of the paper, ``(f - y)^2 / (2 s^2) + log(s^2) / 2`` with ``s^2 = s_net^2
    + s_noise^2`` (on a detached ``f``, so the denoised image keeps its Noise2Noise optimum). After training, one factor
    per Stokes parameter (``calibration``) matches it to the error measured on Noise2Noise pairs; in single-scan image
    mode one factor per tuning (``calibration_tunings``), as the head's error varies less across the line than the error
    does. In temporal mode the neighbours' noise that passes into the prediction is measured by a bootstrap (the network
    on copies of its prediction plus the cube's noise) and added to the head's variance (none in quiet channels, where
    weak signal scales it), whose factors go by bins of its size (``calibration_bins``). The epistemic part: MC dropout.

    References
    ----------
    - Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
      neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: the method (their Sect. 2), the U-Net
      and the variance network (Tables B.1 and B.2), and the uncertainty (Sect. 3.1.1): the aleatoric loss of
      their Eq. (1) and Monte-Carlo dropout.
    - Lehtinen, J., Munkberg, J., Hasselgren, J., et al. 2018, "Noise2Noise: Learning Image Restoration without
      Clean Data", ICML, PMLR 80, 2965.
    - Huang, T., Li, S., Jia, X., Lu, H., & Liu, J. 2021, "Neighbor2Neighbor: Self-Supervised Denoising from Single
      Noisy Images", CVPR: the pairs of a single scan.
    - Zhou, Y., Jiao, J., Huang, H., et al. 2020, "When AWGN-based Denoiser Meets Real Noises", AAAI: pixel-shuffle
      down-sampling.
    - Guizar-Sicairos, M., Thurman, S. T., & Fienup, J. R. 2008, "Efficient subpixel image registration
      algorithms", Optics Letters, 33, 156: the shifts of the scans (`skimage.registration.phase_cross_correlation`).
    - Moisan, L. 2011, "Periodic plus smooth image decomposition", J. Math. Imaging Vis., 39, 161: the shift itself.
    - Rees, D. E., Lopez Ariste, A., Thatcher, J., & Semel, M. 2000, "Fast inversion of spectral lines using
      principal component analysis", A&A, 355, 759: spectral principal components of Stokes profiles.
    - Connolly, A. J., & Szalay, A. S. 1999, "A robust classification of galaxy spectra: dealing with noisy and
      incomplete data", AJ, 117, 2052: gappy PCA.
    - Gal, Y., & Ghahramani, Z. 2016, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep
      Learning", ICML, PMLR 48, 1050: Monte-Carlo dropout.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from ndcube import NDCube
    >>> from sunpy_nn import Denoiser
    >>> wcs = WCS(naxis=3)
    >>> wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN", "WAVE"]
    >>> wcs.wcs.cunit = ["arcsec", "arcsec", "nm"]
    >>> cube = NDCube(np.random.default_rng(0).normal(0, 1e-3, (3, 48, 48)), wcs=wcs)  # one scan, 3 wavelengths
    >>> den = Denoiser(n_filters=8).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0, progress=False)
    >>> den.fit_settings["pairs"]  # one scan: neighbour sub-sampling
    'neighbour sub-sampling'
    >>> clean = den.predict(cube, uncertainty="total", mc_samples=2, progress=False)
    >>> clean.data.shape, type(clean.uncertainty).__name__
    ((3, 48, 48), 'StdDevUncertainty')

    With real data: ``den = Denoiser().fit(crisp_cube, epochs=10)``, ``den.save("crisp_8542.pt")``, and later
    ``Denoiser.load("crisp_8542.pt").predict(other_cube)``.
    """

    def __init__(
        self,
        mode: str = "image",
        n_filters: int = 32,
        depth: int = 2,
        *,
        dropout: float = 0.01,
        padding: str = "reflect",
        residual: bool | None = None,
        temporal: int = 0,
        shuffle: int = 1,
        align: bool = True,
        spectral_pca: bool | None = None,
        noise_per_tuning: bool | None = None,
    ) -> None:
        if mode not in ("image", "spectral"):
            raise ValueError(f"mode must be 'image' or 'spectral', not {mode!r}")
        n_filters, depth = _check_int("n_filters", n_filters, 1), _check_int("depth", depth, 1)
        dropout = _check_real("dropout", dropout, 0.0, 1.0)
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' or 'zeros', not {padding!r}")
        self.mode, self.n_filters, self.depth, self.dropout, self.padding = mode, n_filters, depth, dropout, padding
        # Measured: the residual form keeps strong signals in image mode (V error 0.45 -> 0.31 of the noise on a
        # kG cube) but trains more slowly in spectral mode (0.54 against 0.24 after 1,600 patches), so it is the
        # default of image mode only.
        self.residual = (mode == "image") if residual is None else bool(residual)
        self.temporal = _check_int("temporal", temporal, 0)
        self.shuffle = _check_int("shuffle", shuffle, 1)
        if self.temporal and self.shuffle > 1:
            raise ValueError("shuffle is for single scans (neighbour sub-sampling); temporal mode needs no shuffle")
        if align not in (True, False):
            raise ValueError(f"align must be True or False, not {align!r}")
        #: Whether the scans of a time series are registered onto one another (`fit`, and temporal `predict`).
        self.align = bool(align)
        if spectral_pca not in (None, True, False):
            raise ValueError(f"spectral_pca must be None, True or False, not {spectral_pca!r}")
        if spectral_pca and mode == "spectral":
            raise ValueError(
                "spectral_pca is for image mode: in spectral mode the network already sees all wavelengths; use "
                "mode='image' or spectral_pca=None"
            )
        #: Whether to denoise spectral principal components (`None`: decided by `fit`, see the class notes).
        self.spectral_pca = spectral_pca
        if noise_per_tuning not in (None, True, False):
            raise ValueError(f"noise_per_tuning must be None, True or False, not {noise_per_tuning!r}")
        #: Whether each tuning gets its own noise level (`None`: where they differ, see the class notes).
        self.noise_per_tuning = noise_per_tuning
        #: The noise of each tuning relative to ``noise`` (`fit`), per Stokes parameter that has one (see Notes).
        self.noise_tunings: dict[str, list[float]] = {}
        #: The fitted spectral basis of each Stokes parameter, ``(wavelength, component)``; empty: tunings as they are.
        self.spectral_basis: dict[str, np.ndarray] = {}
        #: The mean square of each principal component on the training cube, in units of the noise squared.
        self.spectral_eigenvalues: dict[str, list[float]] = {}
        #: Factor on the aleatoric uncertainty of each Stokes parameter, from Noise2Noise pairs after training (`fit`).
        self.calibration: dict[str, float] = {}
        #: One scan (``temporal=0``, image mode): the factor at each tuning, used instead of ``calibration``.
        self.calibration_tunings: dict[str, list[float]] = {}
        #: Temporal mode: the head's factors by bins of its variance (``head_edges``; formats 7-8: ``edges``), or empty.
        self.calibration_bins: dict[str, dict[str, list | float]] = {}
        self.model: UNet | None = None
        self.noise: dict[str, float] = {}
        #: How each noise level was estimated (`estimate_noise`'s method).
        self.noise_methods: dict[str, str] = {}
        #: Temporal mode: the spatial correlation of each Stokes parameter's noise (a Gaussian sigma in px, 0: white)
        #: with which the neighbours' propagated noise is measured; `None` for a temporal denoiser saved before it was.
        self.noise_correlation: dict[str, float] | None = {}
        #: The unit of the training cube, in which `noise` is (`None`: unknown, in files saved before it was kept);
        #: prediction converts the noise levels to a cube's unit (`_trained_noise`).
        self.unit: str | None = None
        self.n_wavelengths: int | None = None
        self.history: dict = {"train_loss": [], "val_loss": [], "epoch_time": []}
        self.fit_settings: dict = {}
        #: The file the weights were loaded from or saved to, and its SHA-256 (None once training changes them).
        self.source: dict | None = None

    # ---------------------------------------------------------------------- fit
    def fit(
        self,
        cube: NDCube,
        *,
        epochs: int = 10,
        patches_per_epoch: int = 1000,
        patch_size: int | None = None,
        batch_size: int = 5,
        lr: float = 1e-3,
        loss: str = "l2",
        stokes=("Q", "U", "V"),
        val_fraction: float | None = None,
        pairs: str = "auto",
        seed: int | None = None,
        device=None,
        progress: bool = True,
        precision: str = "float32",
    ) -> Denoiser:
        """
        Train on the cube itself (or continue training a loaded denoiser: a warm start).

        The cube is scaled to units of its noise, and `~sunpy_nn.training.train_noise2noise` trains the network on
        `~sunpy_nn.training.Noise2NoisePairs` of it; the uncertainty is calibrated afterwards.

        Parameters
        ----------
        cube : `ndcube.NDCube`
            The observation, with two spatial axes and optional wavelength, Stokes and time axes. Masked and NaN
            pixels are never used. A dask-backed cube is not loaded: training reads a random pool of whole frames
            (256 MB; stacks of consecutive scans, registered) anew each epoch, and the noise levels come from a few
            pairs of scans. In temporal mode a stack holds scan t and its neighbours, registered onto scan t.
        epochs, patches_per_epoch, batch_size, lr
            Training length (epochs of ``patches_per_epoch`` patches, at least one batch) and Adam's settings.
            The paper used batches of 10 and a learning rate of 1e-4. The default 1e-3, cosine-annealed to zero over
            the training, converges within the default 10,000 patches, which 1e-4 does not (rms error 0.25 against
            0.22 x the noise for Q, with batches of 10, measured in ``benchmarks/denoise_science.py``). Batches of 5
            (the default) take twice the optimiser steps over the same patches, and the number of steps limits the
            error of a fit this short: single-scan Stokes V 0.216 against 0.226 x the noise with batches of 10 on
            the white cube of ``benchmarks/denoise_batch.py``, in the same time on one thread. Two threads speed up
            small batches a little less (the budget run of ``benchmarks/denoise_science.py``: 410 s against 359 s
            with batches of 10, on a 2-core AMD EPYC).
        patch_size : int, optional
            Edge of the training patches, a multiple of ``2**depth`` (4). Default: the paper's 52 rounded down to one,
            at least two (48 at depth 3, 64 at 5), or the largest that fits (logged; doubled for neighbour pairs).
        loss : {"l2", "l1"}
            Loss of the denoised image (the paper: L2, whose minimiser with noisy targets is the clean image).
        stokes : tuple of str or None
            Stokes parameters to train on (`None`: all).
        val_fraction : float, optional
            Fraction of the field of view (its right edge) held out for the validation loss; 0.1 by default (none
            where the default strip would leave too little for the training patches). A strip too narrow for
            validation patches of 16 px (``2 shuffle`` times that for neighbour sub-sampling), or a ``patch_size``
            below 16, gives no validation loss: silently by default, with a warning when ``val_fraction`` is given.
        pairs : {"auto", "time", "neighbour"}
            Training pairs: scans (``"time"``, Noise2Noise: scan t against the mean of scans t-1 and t+1, or the
            other scan of two; in temporal mode the neighbouring scans against scan t), neighbour sub-sampling of
            single scans (``"neighbour"``), or ``"auto"``: scans when there are two or more, else neighbour
            sub-sampling.
        seed : int, optional
            Seeds the weights (of a new network), the dropout, the pairs and the batch order.
        device : str, optional
            ``"cpu"``, ``"cuda"`` or `None` for the best available.
        progress : bool
            Show a progress bar.
        precision : {"float32", "bfloat16"}
            Arithmetic of the training steps: float32, or bfloat16 mixed precision (weights, loss and calibration
            stay float32), faster on a CPU with AMX or AVX512-BF16 or a recent GPU, at a slightly higher error (the
            training guide's table). Prediction runs in its own ``precision``.

        Returns
        -------
        `Denoiser`
            ``self``, trained; ``history`` holds the losses per epoch, ``fit_settings`` the training's settings
            (``fit_settings["fits"]``: the recipe of every fit of this network, warm starts included, in order; its
            other entries are the last fit's, with ``epochs`` counting all fits), ``calibration`` the factor of each
            Stokes parameter's uncertainty (measured on Noise2Noise pairs after training; ``calibration_tunings``
            that of each tuning; ``calibration_bins``, temporal mode), ``noise_methods`` how each noise level was
            estimated and, in temporal mode, ``noise_correlation`` the spatial correlation of each Stokes
            parameter's noise (a Gaussian sigma in px, 0 for white noise, from the scan differences).

        Raises
        ------
        TypeError
            ``cube`` is not an `ndcube.NDCube`.
        ValueError
            An argument or device out of range or an unknown precision (checked before anything is read), a patch size
            that does not fit the image, a cube without the needed axes or scans, Stokes parameters the cube does not
            have (or none, or one twice) or without a finite value, infinite values, a constant one to denoise,
            ``spectral_pca=True`` with few spectra complete at every wavelength, (a warm start) Stokes parameters or a
            number of wavelengths the denoiser's spectral basis does not have, a dask-backed cube with pixel shuffling,
            ``noise_per_tuning=True`` with one scan, or bfloat16 on a GPU that cannot run it.
        RuntimeError
            ``device="cuda"`` where torch sees no CUDA GPU.

        Warns
        -----
        sunpy_nn.SunpyNNUserWarning
            A ``val_fraction`` was given but leaves no room for validation patches: training goes on without a
            validation loss.
        """
        return self._fit(**{k: v for k, v in locals().items() if k != "self"})  # by name: _fit has the same names

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        cube: NDCube,
        *,
        stokes=("Q", "U", "V"),
        tile_size: int | None = None,
        uncertainty: str | None = "aleatoric",
        mc_samples: int = 20,
        device=None,
        seed: int | None = None,
        precision: str | None = "float32",
        compile: bool = False,
        progress: bool = True,
    ) -> NDCube:
        """
        Denoise a cube with the trained network.

        Parameters
        ----------
        cube : `ndcube.NDCube`
            The cube (the one trained on, or another of the same instrument setup). When its data is a dask array, the
            result is lazy: its data and uncertainty are dask arrays computed frame by frame (and, with ``tile_size``,
            in overlapping spatial tiles), equal to the in-memory result (with ``uncertainty="total"``, up to the
            dropout's draws: seeded block by block). In temporal mode, scan by scan (each Stokes parameter's wavelengths
            together) from the frames of scan t and of its neighbours, each scan read once; the shifts that register the
            neighbours are those of the cube in memory, measured when `predict` is called on Stokes I averaged over the
            tunings, 8 steps at a time.
        stokes : tuple of str or None
            Stokes parameters to denoise (`None`: all); the others are returned as they are, bit for bit.
        tile_size : int, optional
            Tile edge for large frames (the result does not depend on it). Tiles hold the network's receptive
            radius on each side plus a core: below 4 radii (152 px for the default network) the value is raised
            to that, with a log line.
        uncertainty : {None, "aleatoric", "total"}
            `None`: no uncertainty. ``"aleatoric"``: the variance head's error of the denoised value.
            ``"total"``: also the epistemic part from ``mc_samples`` Monte-Carlo dropout passes, added in
            quadrature (needs a network with dropout). Stokes parameters that are not denoised keep the cube's
            own uncertainty, or, when it has none, get the noise level estimated on this cube (`estimate_noise`),
            per tuning where the tunings' levels differ (see the class notes, **Scaling**).
        mc_samples : int
            Forward passes for the epistemic uncertainty (at least 2 for ``"total"``).
        device : str, optional
            ``"cpu"``, ``"cuda"`` or `None` for the best available.
        seed : int, optional
            Seeds the Monte-Carlo dropout.
        precision : {"float32", "bfloat16", "auto", None}
            Arithmetic of the network, as for `~sunpy_nn.enhance_map` (default: an optimised float32 copy, equal
            to the plain network to about 1e-5 of the data range).
        compile : bool
            Compile the network with `torch.compile` (where that fails, a warning is logged and the network runs
            uncompiled; Monte-Carlo dropout passes always do, as their draws cannot be checked against eager mode).
        progress : bool
            Show a progress bar over frames.

        Returns
        -------
        `ndcube.NDCube`
            A new cube with the same WCS, unit, mask, ``psf``, ``extra_coords``, ``global_coords`` and metadata
            (a deep copy of the same type, plus provenance under ``meta["sunpy_nn"]``, or as HISTORY cards when
            the meta is a `~astropy.io.fits.Header`), and the uncertainty as `~astropy.nddata.StdDevUncertainty`.
            The data type is that of the input when it is floating point (float32 at least; integers become
            floats that hold them exactly), so Stokes parameters not denoised come back bit for bit, masked
            pixels included. Denoised Stokes parameters are NaN where the input is NaN or masked.

        Raises
        ------
        TypeError
            ``cube`` is not an `ndcube.NDCube`.
        ValueError
            An argument or device out of range (checked before any work), an untrained denoiser, a cube it cannot apply
            to (Stokes parameters it was not fitted on or without a finite value, another number of wavelengths in
            spectral mode or a spectral basis), infinite values, or a dask-backed cube for pixel shuffling.
        RuntimeError
            ``device="cuda"`` where torch sees no CUDA GPU.

        Warns
        -----
        SunpyNNUserWarning
            The cube's noise differs from the noise the denoiser was trained at by more than a factor of 2
            (``NOISE_MISMATCH``) for a Stokes parameter it denoises: the network expects that noise; refit it. Or
            its noise varies across the tunings otherwise than the training cube's (``noise_tunings``, or one
            level) by more than ``NOISE_TUNING_SPREAD`` (unless ``noise_per_tuning=False``): refit it.
        """
        return self._predict(
            cube, stokes, tile_size, uncertainty, mc_samples, device, seed, precision, compile, progress
        )

    def provenance(self) -> dict:
        """
        What made a result: software, model (file and SHA-256), noise levels and training settings.

        The record `predict` stores in each result's meta (``meta["sunpy_nn"]``, or HISTORY lines in a FITS header;
        see `sunpy_nn.header.provenance`). Call it on a trained (fitted or loaded) denoiser.

        Returns
        -------
        dict
            A new dict: ``software`` (``"sunpy_nn <version>"``), ``method``, ``mode``, ``model`` (``file`` and
            ``file_sha256`` of the weight file it was loaded from or saved to, `None` for a file it has not been saved
            to since training; ``weights_sha256``, the SHA-256 of the weights themselves), ``architecture`` (the U-Net's
            constructor arguments), ``noise`` (the noise level of each Stokes parameter, in the unit of the cube it was
            trained on), ``noise_methods``, ``temporal``, ``shuffle``, ``align`` (whether the scans were registered onto
            one another; the shifts are in ``fit["scan_shifts"]``, a lazy fit's steps in ``fit["scan_steps"]``),
            ``uncertainty_calibration`` (the factor of each Stokes parameter's aleatoric uncertainty),
            ``uncertainty_calibration_per_tuning`` (single-scan image mode: the factor of each tuning, used instead;
            `None` in other modes and in files before format 4), ``uncertainty_calibration_bins`` (temporal mode:
            ``calibration_bins``), ``noise_correlation`` (temporal mode: the Gaussian sigma in px of each Stokes
            parameter's noise correlation; `None` for older temporal files), ``spectral_pca`` (the eigenvalues of each
            Stokes parameter's spectral principal components, in units of the noise squared; `None` when the tunings are
            denoised as they are), ``unit`` (the training cube's unit, ``"dimensionless"`` for I/Ic; `None` for a file
            saved before it was kept), ``noise_tunings`` (the noise of each tuning relative to ``noise``, which is then
            the median tuning's, for the Stokes parameters that have one; `None`: one level each; a result records the
            profile its prediction applied) and ``fit`` (the training settings).

        Raises
        ------
        ValueError
            The denoiser is not trained (neither fitted nor loaded): it has made nothing yet.

        Examples
        --------
        >>> from sunpy_nn import Denoiser
        >>> from sunpy_nn.data.synthetic import synthetic_crisp_cube
        >>> cube, truth = synthetic_crisp_cube(32, n_wavelengths=2, n_scans=2, seed=0)
        >>> den = Denoiser(n_filters=4).fit(cube, epochs=1, patches_per_epoch=10, patch_size=16, seed=0,
        ...                                 progress=False)
        >>> record = den.provenance()
        >>> record["method"], sorted(record["noise"]), record["model"]["file"]
        ('Noise2Noise (Diaz Baso et al. 2019)', ['I', 'Q', 'U', 'V'], None)
        """
        from sunpy_nn import __version__

        if self.model is None:
            raise ValueError("This Denoiser is not trained: call fit(cube) or Denoiser.load(path) first")
        model = {"weights_sha256": _weights_sha256(self.model)}
        if self.source is not None:
            model = {"file": self.source["file"], "file_sha256": self.source["sha256"], **model}
        else:
            model = {"file": None, **model}
        return {
            "software": f"sunpy_nn {__version__}",
            "method": "Noise2Noise (Diaz Baso et al. 2019)",
            "mode": self.mode,
            "model": model,
            "architecture": dict(self.model.config),
            "noise": dict(self.noise),
            "noise_methods": dict(self.noise_methods),
            "temporal": self.temporal,
            "shuffle": self.shuffle,
            "align": self.align,
            "uncertainty_calibration": dict(self.calibration),
            "uncertainty_calibration_per_tuning": {k: list(v) for k, v in self.calibration_tunings.items()} or None,
            "uncertainty_calibration_bins": self._bins_copy() or None,
            "noise_correlation": None if self.noise_correlation is None else dict(self.noise_correlation),
            # the eigenvalues of the spectral basis per Stokes parameter (noise units squared); None: the tunings
            "spectral_pca": {k: list(v) for k, v in self.spectral_eigenvalues.items()} or None,
            "unit": "dimensionless" if self.unit == "" else self.unit,  # '' read as an empty HISTORY line
            "noise_tunings": {k: list(v) for k, v in self.noise_tunings.items()} or None,
            "fit": dict(self.fit_settings),
        }

    # -------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """
        Save the network, noise levels and settings in the weight format of `sunpy_nn.data`.

        Two files, as `~sunpy_nn.data.save_weights` writes them for every network of the package:

        * ``<name>.pt``, a `torch.save` dict (read with ``weights_only=True``): ``format`` ``"sunpy_nn-weights"``,
          ``format_version``, ``name``, ``config`` (the `~sunpy_nn.nn.UNet`'s constructor arguments), ``state_dict``,
          and ``extra``, the denoiser's settings that `load` restores: ``format`` ``"sunpy_nn-denoiser"``,
          ``format_version`` 8, ``mode``, ``n_wavelengths``, ``noise`` and ``noise_methods`` (per Stokes parameter),
          ``noise_per_tuning`` and ``noise_tunings`` (the setting, and each tuning's relative noise), ``temporal``,
          ``shuffle``, ``align``, ``calibration``, ``calibration_tunings``, ``calibration_bins``, ``propagation``,
          ``bootstrap`` (temporal mode's draws and window), ``noise_correlation``, ``spectral_basis``,
          ``spectral_eigenvalues``, ``history`` and ``fit_settings`` (covered by the file's SHA-256; nothing depends on
          the clock: the same ``seed``, machine and file name write the same bytes).
        * ``<name>.json``, the model card: the SHA-256 of the ``.pt`` file, the architecture, the number of parameters,
          the sunpy_nn version, the denoiser's ``format`` and ``format_version`` as above, and the settings again to
          read (``kind``, ``mode``, ``noise``, ``noise_methods``, ``noise_per_tuning``, ``temporal``, ``shuffle``,
          ``align``, ``uncertainty_calibration`` and its ``_per_tuning`` and ``_bins``, ``noise_correlation_px``,
          ``propagation_bootstrap``, ``spectral_pca_eigenvalues``, ``training_recipe``, ``validation``), and the
          seconds each epoch took (``epoch_time_s``, which `load` restores as ``history["epoch_time"]``).

        Parameters
        ----------
        path : str or `pathlib.Path`
            The ``.pt`` file; ``.pt`` is added to a name that does not end in it (``"crisp.v2"`` writes
            ``crisp.v2.pt`` and ``crisp.v2.json``).

        Returns
        -------
        `pathlib.Path`
            The ``.pt`` file.

        Raises
        ------
        ValueError
            The denoiser is not trained.
        """
        return self._save(path)

    @classmethod
    def load(cls, path: str | Path) -> Denoiser:
        """
        Load a denoiser written by `save`, or by sunpy_nn versions before the registry format (format 1).

        Parameters
        ----------
        path : str or `pathlib.Path`
            The ``.pt`` file (``.pt`` may be left out, as for `save`). A model card ``.json`` beside it is checked
            against the file's SHA-256.

        Returns
        -------
        `Denoiser`
            The trained denoiser, with the noise levels, calibration, history and settings it was saved with.

        Raises
        ------
        sunpy_nn.WeightsError
            The file is missing, corrupt or does not match its model card's SHA-256, holds no denoiser (e.g. an
            Enhance network), or its network and settings do not fit (its channels, noise levels, basis, bins).

        Notes
        -----
        The format is described in `save`. Files of format 2 have no spectral basis (their networks denoise the
        tunings). Format 1, written before, is one `torch.save` dict: ``format``
        ``"sunpy_nn-denoiser"``, ``format_version`` 1, ``config``, ``state_dict`` and the settings at its top level
        (``history`` and ``fit_settings`` as JSON strings); its model card has no ``format`` entry.
        """
        return cls._load(path)
