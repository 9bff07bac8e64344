"""
The randomised ("blind") HMI degradation that Enhance v2 is trained with, and its pair builder.

A network trained on one fixed degradation operator only works under that operator: issue #12 reported that Enhance
v1 (trained with HMI's modified PSF and full pixel-area integration) lost most of its gain over bicubic when a
held-out blurred scene was sampled at pixel centres instead (the validation report in the docs has this package's
own measurement of v1 and v2 under both detector models). Real
HMI lies somewhere between, with a PSF known to some ten per cent. Following the blind degradation practice of
modern super-resolution (e.g. Zhang et al. 2021, BSRGAN; Wang et al. 2021, Real-ESRGAN), every training pair
draws its own PSF, detector, noise, sampling phase, rotation and pixel scale from ranges around HMI's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, signal

from sunpy_nn.psf import HMI_PIXEL_SCALE_ARCSEC, HMI_PSF_MODIFIED, _sandwich, airy_psf, hmi_psf, sampling_matrix
from sunpy_nn.training.sources import TrainingSource

__all__ = ["DegradationModel", "degrade_scene", "make_source_pairs"]

HMI_SCALE = HMI_PIXEL_SCALE_ARCSEC  # arcsec/pix
#: The paper's input noise: 1e-3 of Ic for continuum, 10 G (0.01 kG) for magnetograms, in network units.
PAPER_NOISE = {"intensity": 1e-3, "blos": 1e-2}


@dataclass
class EnhancePairs:
    """
    Input/target patch pairs in network units: ``inputs`` (N, 1, n, n), ``targets`` (N, 1, 2n, 2n).

    Made by `~sunpy_nn.training.make_enhance_pairs` and `make_source_pairs` and consumed by
    `~sunpy_nn.training.train_enhance`; ``len(pairs)`` is N.
    Each parameter is kept as the attribute of the same name.

    Parameters
    ----------
    inputs : `numpy.ndarray`
        Float32 ``(N, 1, n, n)``: HMI-like inputs (0.504 arcsec/pix unless made otherwise), in network units (I/Ic
        for continuum, kG for magnetograms).
    targets : `numpy.ndarray`
        Float32 ``(N, 1, 2n, 2n)``: the matching truths at half the input pixel, in the same units.
    meta : dict
        The recipe that made the pairs (kind, degradation, sizes, seed), for model cards.
    """

    inputs: np.ndarray
    targets: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class DegradationModel:
    """
    Ranges of the randomised HMI degradation; each training pair draws uniformly within them.

    Each parameter is kept as the attribute of the same name (the object is immutable). A range ``(a, a)`` fixes
    the value.

    Parameters
    ----------
    psf_w, psf_big_w, psf_e : tuple of float
        Ranges of the core width ``w``, tail width ``W`` and tail fraction ``e`` of Wachter et al.'s (2012) PSF
        (``k=3``; ``w`` and ``W`` in units of ``r = pi D theta / lambda``, dimensionless). Defaults 1.8-2.2, 3.0-3.6
        and 0.05-0.15: they span Wachter's reference (1.8, 3.0, 0.1) and the paper's modified PSF (2.0, 3.4, 0.1),
        which were fitted under different detector models, with the tail fraction uncertain by about half (stray
        light changes with the instrument's state).
    fill : tuple of float
        Range of the detector aperture as a fraction of the pixel, within ``[0, 1]``: 0 samples the blurred scene
        at pixel centres (how the Enhance paper degraded its simulation), 1 integrates over the whole pixel
        (`sunpy_nn.psf.degrade`).
    noise : tuple of float, optional
        Range of the Gaussian noise sigma in network units (I/Ic, or kG). Default for continuum 0.5-2 x 1e-3 Ic
        (the paper's 1e-3, with HMI's 45 s and 720 s products on either side); for magnetograms 5-20 G
        (0.005-0.02 kG; HMI's 720 s and 45 s noise levels, around the paper's 10 G).
    rotation : float
        Largest rotation in degrees of the scene against the pixel grid (on top of the eight flips and quarter
        turns of the augmentation), so the network does not learn the grid orientation of the training frames.
    scale_jitter : float
        Relative jitter of the pixel scale against the PSF (+-2 %: HMI's plate scale varies with the orbit and
        the frames' own scales are known to about that).
    paper_noise : bool
        Use the paper's fixed noise (1e-3 Ic, or 10 G) instead of a range when ``noise`` is None.

    References
    ----------
    - Wachter, R., Schou, J., Rabello-Soares, M. C., et al. 2012, "Image Quality of the Helioseismic and Magnetic
      Imager (HMI) Onboard the Solar Dynamics Observatory (SDO)", Sol. Phys., 275, 261: the PSF and its reference
      parameters.
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344, Eqs. (1) and (6): the image formation model, the modified PSF and the
      paper's noise levels.
    - Zhang, K., Liang, J., Van Gool, L., & Timofte, R. 2021, "Designing a Practical Degradation Model for Deep
      Blind Image Super-Resolution" (BSRGAN), ICCV; Wang, X., Xie, L., Dong, C., & Shan, Y. 2021,
      "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data", ICCV Workshops: the
      practice of drawing each training pair's degradation at random.

    Examples
    --------
    >>> from sunpy_nn.training import DegradationModel
    >>> DegradationModel().noise_range("blos")
    (0.005, 0.02)
    >>> DegradationModel.paper().noise_range("intensity")
    (0.001, 0.001)
    """

    psf_w: tuple[float, float] = (1.8, 2.2)
    psf_big_w: tuple[float, float] = (3.0, 3.6)
    psf_e: tuple[float, float] = (0.05, 0.15)
    fill: tuple[float, float] = (0.0, 1.0)
    noise: tuple[float, float] | None = None
    rotation: float = 3.0
    scale_jitter: float = 0.02
    paper_noise: bool = False

    @classmethod
    def paper(cls, detector: str = "point") -> DegradationModel:
        """
        The Enhance paper's fixed operator: the modified PSF, noise 1e-3 Ic or 10 G, no rotation or jitter.

        Parameters
        ----------
        detector : {"point", "area"}
            ``"point"`` samples at pixel centres, as the paper did; ``"area"`` integrates over the pixel, as
            sunpy_nn's v1 weights were trained.

        Returns
        -------
        `DegradationModel`
            Ranges of zero width at the paper's values, with ``paper_noise=True``.

        Raises
        ------
        KeyError
            ``detector`` is neither ``"point"`` nor ``"area"``.
        """
        e, w, _, big_w = HMI_PSF_MODIFIED
        fill = {"point": 0.0, "area": 1.0}[detector]
        return cls((w, w), (big_w, big_w), (e, e), (fill, fill), None, 0.0, 0.0, paper_noise=True)

    def noise_range(self, kind: str) -> tuple[float, float]:
        """
        The range of the noise sigma for ``kind``: ``noise`` when set, else the paper's value or the default range.

        Parameters
        ----------
        kind : {"intensity", "blos"}
            Data kind. Any other value is taken as ``"blos"`` unless ``paper_noise`` is set.

        Returns
        -------
        tuple of float
            ``(low, high)`` in network units: I/Ic for ``"intensity"``, kG for ``"blos"``.

        Raises
        ------
        KeyError
            An unknown ``kind`` with ``paper_noise`` set and ``noise`` None.
        """
        if self.noise is not None:
            return self.noise
        if self.paper_noise:
            return (PAPER_NOISE[kind], PAPER_NOISE[kind])
        return (0.5e-3, 2e-3) if kind == "intensity" else (0.005, 0.02)

    def as_dict(self, kind: str) -> dict:
        """
        The degradation as plain values for a model card, with the noise range resolved for ``kind``.

        Parameters
        ----------
        kind : {"intensity", "blos"}
            Data kind, for the noise range (`noise_range`).

        Returns
        -------
        dict
            The fields as `dataclasses.asdict` gives them (ranges as tuples), with ``noise`` replaced by the
            resolved ``[low, high]`` in network units, and the fixed PSF exponent ``psf_k`` (3.0).

        Raises
        ------
        KeyError
            As `noise_range`.
        """
        d = asdict(self)
        d["noise"] = list(self.noise_range(kind))
        d["psf_k"] = 3.0
        return d


def _draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(*r))


def make_source_pairs(
    sources: list[TrainingSource],
    *,
    n_patches: int,
    split: str = "train",
    input_size: int = 32,
    degradation: DegradationModel | None = None,
    target_diameter: float = 0.28,
    intensity_range: tuple[float, float] | None = None,
    intensity_fraction: float = 0.0,
    augment: bool = True,
    seed: int | None = None,
):
    """
    Build Enhance (input, target) pairs from training sources under a randomised degradation.

    For each pair: draw a source (by weight), a position inside its training region (``split="train"``, with the
    PSF footprint kept out of the held-out region) or inside its held-out region (``"validation"``), the PSF
    parameters, detector fill, noise, pixel-scale jitter, sub-pixel phase and rotation. The input is the scene
    convolved with the drawn HMI PSF and sampled by the drawn detector on ``input_size`` pixels of
    0.504 arcsec (jittered); the target is the scene convolved with the Airy pattern of a ``target_diameter`` m
    telescope at 617.3 nm, integrated over pixels of half that size.

    Parameters
    ----------
    sources : list of `~sunpy_nn.training.TrainingSource`
        High-resolution scenes in network units (I/Ic, or kG), all of one ``kind``.
    n_patches : int
        Number of pairs N.
    split : {"train", "validation"}
        Draw from each source's training region or from its held-out region.
    input_size : int
        Input patch edge n in HMI pixels; targets are 2n pixels across.
    degradation : `DegradationModel`, optional
        Ranges of the degradation (default: ``DegradationModel()``).
    target_diameter : float
        Aperture of the target telescope in metres (0.28: twice HMI's).
    intensity_range : tuple of float, optional
        Continuum only: with probability ``intensity_fraction``, a pair is multiplied (before the noise) by a factor
        drawn uniformly from this range, e.g. ``(0.15, 1.0)``, the observation of a darker (umbra-like) scene.
    intensity_fraction : float
        Fraction of the pairs that ``intensity_range`` scales.
    augment : bool
        Apply one of the eight flips and quarter turns to each pair (and a sign flip to half the magnetogram
        pairs).
    seed : int, optional
        Random seed: the same seed gives the same pairs.

    Returns
    -------
    `~sunpy_nn.training.EnhancePairs`
        Float32 arrays ``inputs`` (N, 1, n, n) and ``targets`` (N, 1, 2n, 2n) in the sources' units, and the recipe
        in ``meta``.

    Raises
    ------
    ValueError
        ``split`` is unknown, the sources are not all of one kind (or there are none), no source has a region for
        ``split``, or a patch (with its PSF footprint) does not fit a source's region.

    References
    ----------
    - Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
      doi:10.1051/0004-6361/201731344: inputs degraded with the HMI PSF (Eq. 6) to 0.504 arcsec/pix, targets
      convolved with the Airy pattern of a 28 cm telescope.
    - Zhang, K., Liang, J., Van Gool, L., & Timofte, R. 2021, "Designing a Practical Degradation Model for Deep
      Blind Image Super-Resolution" (BSRGAN), ICCV: a degradation drawn at random for every training pair.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.training import TrainingSource, make_source_pairs
    >>> scene = 1 + 0.1 * np.random.default_rng(0).standard_normal((600, 600))
    >>> source = TrainingSource(scene, 0.0662, "intensity", "noise")
    >>> pairs = make_source_pairs([source], n_patches=2, input_size=8, seed=0)
    >>> pairs.inputs.shape, pairs.targets.shape
    ((2, 1, 8, 8), (2, 1, 16, 16))
    """
    import astropy.units as u

    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', not {split!r}")
    degradation = degradation or DegradationModel()
    kinds = {s.kind for s in sources}
    if len(kinds) != 1:
        raise ValueError(f"all sources must be of one kind, got {sorted(kinds)}")
    kind = kinds.pop()
    rng = np.random.default_rng(seed)
    usable = [s for s in sources if np.diff(s.columns(split))[0] > 0]
    if not usable:
        raise ValueError(f"no source has a {split} region")
    p = np.array([s.weight for s in usable], float)
    p /= p.sum()
    max_span_factor = math.cos(math.radians(45 - min(45.0, degradation.rotation))) * math.sqrt(2)
    prepared = []
    for s in usable:
        # Kernels at the largest extent any draw needs: the HMI PSF of radius 4.4" (the original code's extent).
        radius = round(4.4 / s.pixel_scale)
        shape = (2 * radius + 1, 2 * radius + 1)
        airy = airy_psf(target_diameter * u.m, 6173 * u.AA, s.pixel_scale, shape=shape)
        y0, y1, x0, x1 = s.valid
        sub = s.image[y0:y1, x0:x1]
        lo, hi = s.columns(split)
        lo, hi = lo - x0, hi - x0
        if split == "validation":
            # A held-out quarter at a frame edge is too narrow for a patch plus its PSF footprint: footprints
            # reaching beyond the frame see it mirrored, as in `degrade_scene`. Training keeps exact footprints.
            sub = np.pad(sub, radius, mode="reflect")
            lo, hi = lo + radius, hi + radius
        # The target's convolution is fixed: once per source ('same' mode, only used >= radius from the edges).
        high = signal.fftconvolve(np.pad(sub, radius, mode="reflect"), airy, mode="valid")
        prepared.append((s, sub, high, radius, lo, hi))
    n_t = 2 * input_size
    inputs = np.empty((n_patches, 1, input_size, input_size), np.float32)
    targets = np.empty((n_patches, 1, n_t, n_t), np.float32)
    draws = {"fill": [], "psf_w": [], "psf_big_w": [], "psf_e": [], "noise": []}
    which = rng.choice(len(prepared), n_patches, p=p)
    for i in range(n_patches):
        s, sub, high, radius, lo, hi = prepared[which[i]]
        jit = 1 + rng.uniform(-degradation.scale_jitter, degradation.scale_jitter)
        s_in = HMI_SCALE * jit
        span = input_size * s_in / s.pixel_scale
        w = math.ceil(span) + 2
        angle = rng.uniform(-degradation.rotation, degradation.rotation) if degradation.rotation else 0.0
        big = math.ceil(w * max_span_factor) + 2 if degradation.rotation else w
        ny, nx = sub.shape
        # Training boxes keep their PSF footprint inside the training columns; validation boxes keep the scene
        # they show (not the footprint) inside the held-out columns.
        guard = radius if split == "train" else 0
        xa, xb = max(lo + guard, radius), min(hi - guard, nx - radius) - big
        ya, yb = radius, ny - radius - big
        if xb < xa or yb < ya:
            raise ValueError(
                f"{s.name}: a {input_size}-pixel patch at {s_in:.3f} arcsec/pix does not fit its {split} region; "
                "use a smaller input_size"
            )
        yy, xx = int(rng.integers(ya, yb + 1)), int(rng.integers(xa, xb + 1))
        e, pw, pbw = _draw(rng, degradation.psf_e), _draw(rng, degradation.psf_w), _draw(rng, degradation.psf_big_w)
        psf = hmi_psf(s.pixel_scale, shape=(2 * radius + 1, 2 * radius + 1), params=(e, pw, 3.0, pbw))
        crop = sub[yy - radius : yy + big + radius, xx - radius : xx + big + radius]
        low = signal.fftconvolve(crop, psf, mode="valid")
        tgt_hr = high[yy : yy + big, xx : xx + big]
        if angle:
            low = ndimage.rotate(low, angle, reshape=False, order=3, mode="reflect")
            tgt_hr = ndimage.rotate(tgt_hr, angle, reshape=False, order=3, mode="reflect")
            c0 = (big - w) // 2
            low, tgt_hr = low[c0 : c0 + w, c0 : c0 + w], tgt_hr[c0 : c0 + w, c0 : c0 + w]
        fill = _draw(rng, degradation.fill)
        ph = rng.uniform(0, 1, 2)  # sub-pixel phase within one high-resolution pixel (w - span >= 2 leaves room)
        my_i = sampling_matrix(w, s.pixel_scale, s_in, ph[0], input_size, fill)
        mx_i = sampling_matrix(w, s.pixel_scale, s_in, ph[1], input_size, fill)
        my_t = sampling_matrix(w, s.pixel_scale, s_in / 2, ph[0], n_t, 1.0)
        mx_t = sampling_matrix(w, s.pixel_scale, s_in / 2, ph[1], n_t, 1.0)
        inp = _sandwich(my_i, low, mx_i)
        tgt = _sandwich(my_t, tgt_hr, mx_t)
        if kind == "intensity" and intensity_range is not None and rng.random() < intensity_fraction:
            f = rng.uniform(*intensity_range)
            inp, tgt = inp * f, tgt * f
        if augment:
            k, flip = int(rng.integers(0, 4)), rng.random() < 0.5
            inp, tgt = np.rot90(inp, k), np.rot90(tgt, k)
            if flip:
                inp, tgt = inp[:, ::-1], tgt[:, ::-1]
            if kind == "blos" and rng.random() < 0.5:
                inp, tgt = -inp, -tgt
        sigma = _draw(rng, degradation.noise_range(kind))
        inputs[i, 0] = inp + rng.normal(0, sigma, inp.shape)
        targets[i, 0] = tgt
        for key, val in (("fill", fill), ("psf_w", pw), ("psf_big_w", pbw), ("psf_e", e), ("noise", sigma)):
            draws[key].append(val)
    meta = {
        "kind": kind,
        "split": split,
        "n_patches": n_patches,
        "sources": {s.name: float(q) for s, q in zip(usable, p, strict=True)},
        "input": f"{input_size}x{input_size} at 0.504 arcsec/pix (+-{degradation.scale_jitter:.0%} jitter)",
        "target": f"{n_t}x{n_t} at half the input pixel, Airy PSF of {target_diameter * 100:.0f} cm at 617.3 nm, "
        "pixel-area integration",
        "degradation": degradation.as_dict(kind),
        "intensity_range": list(intensity_range) if intensity_range else None,
        "intensity_fraction": intensity_fraction,
        "augment": augment,
        "seed": seed,
    }
    return EnhancePairs(inputs, targets, meta)


def degrade_scene(
    image: np.ndarray,
    pixel_scale: float,
    *,
    kind: str,
    detector: str | float = "area",
    psf_params: tuple[float, float, float, float] = HMI_PSF_MODIFIED,
    noise: float | None = None,
    target_diameter: float = 0.28,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    An HMI-like observation of a whole high-resolution scene and its x2 truth, with one fixed operator.

    The evaluation counterpart of `make_source_pairs`: the scene (reflect-padded at its edges) is convolved with
    HMI's PSF (``psf_params``, default the paper's modified one) and sampled on 0.504 arcsec pixels by the
    ``detector`` (``"point"``: pixel centres, ``"area"``: pixel-area integration, or a fill fraction), with
    Gaussian ``noise`` (default 1e-3 Ic or 10 G in network units); the truth is the scene convolved with the
    Airy pattern of a ``target_diameter`` m telescope at 617.3 nm, integrated over 0.252 arcsec pixels. Both
    cover the same area: output pixel ``(i, j)`` of the truth lies in input pixel ``(i // 2, j // 2)``.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D high-resolution scene ``(ny, nx)`` in network units (I/Ic, or kG).
    pixel_scale : float
        Its pixel scale in arcsec per pixel.
    kind : {"intensity", "blos"}
        Data kind, for the default noise.
    detector : {"point", "area"} or float
        Detector model: a name, or the aperture as a fraction of the pixel in ``[0, 1]``.
    psf_params : tuple of float
        ``(e, w, k, W)`` of the HMI PSF (`sunpy_nn.psf.hmi_psf`).
    noise : float, optional
        Gaussian noise sigma in network units (default the paper's: 1e-3 Ic, or 0.01 kG); 0 for none.
    target_diameter : float
        Aperture of the target telescope in metres.
    seed : int, optional
        Seed of the noise.

    Returns
    -------
    low, truth : `numpy.ndarray`
        Float64 ``(n, m)`` and ``(2n, 2m)`` images in the scene's units, with ``n = int(ny * pixel_scale / 0.504)``
        (and ``m`` alike).

    Raises
    ------
    ValueError
        ``detector`` is an unknown name, or a fill fraction outside ``[0, 1]``.
    KeyError
        An unknown ``kind`` when ``noise`` is None.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344, Eqs. (1) and (6): the image formation model and the HMI PSF.

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.training import degrade_scene
    >>> scene = 1 + 0.1 * np.random.default_rng(0).standard_normal((300, 300))
    >>> low, truth = degrade_scene(scene, 0.0662, kind="intensity", detector="point", seed=0)
    >>> low.shape, truth.shape
    ((39, 39), (78, 78))
    """
    import astropy.units as u

    fill = {"point": 0.0, "area": 1.0}.get(detector, detector) if isinstance(detector, str) else float(detector)
    if isinstance(fill, str):
        raise ValueError(f"detector must be 'point', 'area' or a fill fraction, not {detector!r}")
    image = np.asarray(image, dtype=np.float64)
    radius = round(4.4 / pixel_scale)
    shape = (2 * radius + 1, 2 * radius + 1)
    padded = np.pad(image, radius, mode="reflect")
    low = signal.fftconvolve(padded, hmi_psf(pixel_scale, shape=shape, params=psf_params), mode="valid")
    high = signal.fftconvolve(padded, airy_psf(target_diameter * u.m, 6173 * u.AA, pixel_scale, shape=shape), "valid")
    ny, nx = image.shape
    n = (int(ny * pixel_scale / HMI_SCALE), int(nx * pixel_scale / HMI_SCALE))
    low = _sandwich(
        sampling_matrix(ny, pixel_scale, HMI_SCALE, 0.0, n[0], fill),
        low,
        sampling_matrix(nx, pixel_scale, HMI_SCALE, 0.0, n[1], fill),
    )
    truth = _sandwich(
        sampling_matrix(ny, pixel_scale, HMI_SCALE / 2, 0.0, 2 * n[0]),
        high,
        sampling_matrix(nx, pixel_scale, HMI_SCALE / 2, 0.0, 2 * n[1]),
    )
    sigma = PAPER_NOISE[kind] if noise is None else noise
    if sigma:
        low = low + np.random.default_rng(seed).normal(0.0, sigma, low.shape)
    return low, truth
