"""
Sub-pixel alignment of the scans of a time series: for the Noise2Noise pairs (scan t against its neighbours) and
for temporal mode's neighbouring scans.

A residual image motion of a tenth of a pixel between scans (seeing, tracking, the alignment of the reduction)
changes kG Stokes V by ~0.2 of the noise at its gradients: a target "of the same signal" that is not. Measured on
the white-noise cube of ``benchmarks/denoise_science.py`` (a random walk of 0.1-0.2 px per scan), the mean of the
neighbouring scans differs from scan t by 0.17 of the noise in V (rms) as observed, and by 0.03 once aligned.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.fft
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from sunpy_nn.nn.device import apply_thread_policy
from sunpy_nn.nn.lazy import is_dask
from sunpy_nn.utils import fill_nearest

log = logging.getLogger(__name__)

#: Smallest correlation coefficient of two consecutive scans' Stokes I at the peak for their shift to be used:
#: images of noise alone peak at ~4 / sqrt(pixels) by chance, granulation observed 30 s apart at ~0.9.
MIN_CORRELATION = 0.5
#: Precision of the measured shifts: 1/UPSAMPLE px (skimage's upsampled cross-correlation).
UPSAMPLE = 100
#: Widest band (px) at the border that temporal prediction fills in a neighbouring scan shifted onto scan t from that
#: scan's own edge (`shift_frames`): left NaN, those pixels had scan t itself as their estimate, with the full noise,
#: and a 1-px band on two sides of 128 x 128 frames raised the rms error of Stokes U in temporal mode on the
#: correlated cube of ``benchmarks/denoise_science.py`` from 0.200 to 0.224 x the noise (0.206 without alignment).
#: Where every neighbour's band is wider, the pixels stay NaN and scan t is returned there. The band takes the
#: neighbour's border values (its border row, moved along the border by the shift): repeating the nearest row the
#: shift brought in instead, a pixel further in, made the outermost ring of temporal prediction err by more than the
#: noise where Stokes V is strong (its excess (y - p)^2 - 1 over the propagated noise 1.49 noise^2, 0.015 one pixel
#: in; with the border values 0.16: an exploratory replay on the white cube of benchmarks/denoise_seeds.py's seed 2),
#: and the error bars there, calibrated without those pixels, far too narrow.
EDGE_PX = 2


def scan_shifts(images: np.ndarray) -> np.ndarray:
    """
    The shift of each scan that registers it onto the middle scan of the series.

    Parameters
    ----------
    images : `numpy.ndarray`
        ``(scan, y, x)``: one image per scan with structure well above its noise (Stokes I averaged over the
        tunings). NaN pixels are left out (set to the image's mean); pad derotated corners with NaN, not zeros,
        which would dominate the correlation and hold the shifts near 0.

    Returns
    -------
    `numpy.ndarray`
        ``(scan, 2)`` shifts (y, x) in pixels, to 0.01 px: ``shift_frames(scan_u, shifts[u])`` lies on the middle
        scan. Each scan is measured against the one before it (the Sun evolves little between consecutive scans)
        and the steps are summed, so only neighbouring scans need to look alike. A step whose images correlate by
        less than `MIN_CORRELATION` at the peak (structureless or changed) is taken as 0, with a logged warning.
        A scan without any valid pixel (a lost frame) is bridged: the next scan is measured against the last one
        with data, so the scans on either side of it stay registered onto one another (its own shift is that of
        the scan before it).

    Notes
    -----
    Cross-correlation of the mean-subtracted images under a Hann window, upsampled to 1/100 px
    (`skimage.registration.phase_cross_correlation` with ``normalization=None``: the phase-normalised form
    weights the noisy high frequencies as much as the granulation and failed on smooth scenes). On the benchmark
    cubes (noise 3e-3 of the continuum) the shifts came out within 0.01 px of those of the noise-free scenes.
    """
    steps, unmeasured = _steps(images)
    if unmeasured:
        _warn_unmeasured(unmeasured)
    to_first = np.cumsum(steps, axis=0)  # registers scan t onto scan 0
    return to_first - to_first[len(steps) // 2]


def _steps(images) -> tuple[np.ndarray, list[int]]:
    """
    ``(scan, 2)`` shifts registering each scan of ``images`` onto the one before it (row 0: zeros), and the scans
    whose step could not be measured (taken as 0): `scan_shifts`' cross-correlation.
    """
    images = np.asarray(images, np.float64)
    n_t = images.shape[0]
    window = np.outer(np.hanning(images.shape[1]), np.hanning(images.shape[2]))
    prepared, has_data = [], []
    for img in images:
        ok = np.isfinite(img)  # a scan without any valid pixel is all zeros: a shift of 0
        mean = img[ok].mean() if ok.any() else 0.0
        prepared.append(np.where(ok, img - mean, 0.0) * window)
        has_data.append(ok.any())
    steps = np.zeros((n_t, 2))
    unmeasured = []
    last = 0  # the last scan with data: a scan without any (a lost frame) is bridged, its own step 0
    for t in range(1, n_t):
        if not has_data[t]:
            continue
        if has_data[last]:  # the shift that registers scan t onto scan `last` (t - 1, or the one before a gap)
            found = None
            if prepared[last].any() and prepared[t].any():  # (a constant image has no structure to register)
                found = phase_cross_correlation(
                    prepared[last], prepared[t], upsample_factor=UPSAMPLE, normalization=None
                )
            # skimage's error is sqrt(1 - r^2) at the peak: images of noise alone correlate by chance only
            if found is not None and np.sqrt(max(0.0, 1 - found[1] ** 2)) >= MIN_CORRELATION:
                steps[t] = found[0]
            else:
                unmeasured.append(t)
        last = t
    return steps, unmeasured


def _warn_unmeasured(scans: list[int]) -> None:
    log.warning(
        "Scans %s were not aligned onto the scan before them: their Stokes I images correlate by less than %g "
        "(no structure above the noise, or a scene that changed), so their shift was taken as 0",
        scans,
        MIN_CORRELATION,
    )


def _fft_workers() -> int:
    """
    Threads of the FFTs: the count the networks of this thread run on (`sunpy_nn.nn.device.apply_thread_policy`:
    the user's choice, else the package's thread policy, one in a thread other than the main one such as a block of a
    lazy prediction), so that the alignment uses the cores the network does, and no more. The transforms of the
    frames are split among them whole, so the result does not depend on the count.
    """
    return max(1, apply_thread_policy())


def _periodic_smooth(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Moisan's periodic plus smooth decomposition of ``(..., y, x)`` frames: ``frames = periodic + smooth``, where
    ``periodic`` wraps around without a jump at the borders and ``smooth`` is the smooth field that holds the
    jumps (the discrete Poisson solution with them as its source). Moisan, L. 2011, "Periodic plus smooth image
    decomposition", J. Math. Imaging Vis., 39, 161.
    """
    ny, nx = frames.shape[-2:]
    v = np.zeros(frames.shape, np.float64)
    v[..., 0, :] += frames[..., -1, :] - frames[..., 0, :]
    v[..., -1, :] -= frames[..., -1, :] - frames[..., 0, :]
    v[..., :, 0] += frames[..., :, -1] - frames[..., :, 0]
    v[..., :, -1] -= frames[..., :, -1] - frames[..., :, 0]
    cy = np.cos(2 * np.pi * np.arange(ny) / ny)[:, None]
    cx = np.cos(2 * np.pi * np.arange(nx) / nx)[None, :]
    kernel = 2 * cy + 2 * cx - 4
    kernel[0, 0] = 1.0  # the mean stays in the periodic part
    # real transforms: half the work of complex ones on real frames, the same result to rounding
    workers = _fft_workers()
    spectrum = scipy.fft.rfft2(v, axes=(-2, -1), workers=workers) / kernel[:, : nx // 2 + 1]
    spectrum[..., 0, 0] = 0.0
    smooth = scipy.fft.irfft2(spectrum, s=(ny, nx), axes=(-2, -1), workers=workers)
    return frames - smooth, smooth


def shift_frames(frames: np.ndarray, shift, edge: int = 0) -> np.ndarray:
    """
    Frames ``(..., y, x)`` shifted by ``shift`` (y, x) pixels; NaN where the shift brings in no data, or, for bands
    up to ``edge`` px wide, the frames' own border values.

    The frames' periodic part (`_periodic_smooth`, which holds the noise) is shifted by a Fourier phase ramp,
    which is unitary: noise keeps its variance and its power spectrum, white or correlated, so a shifted scan is as
    good a Noise2Noise target or network input as the scan itself (an interpolating spline smooths noise, a
    reflected border changed its variance by 2-3 % well inside the frame). The smooth part, which holds the jumps
    between opposite borders that would otherwise ring across the frame, is shifted by a cubic spline. The
    ``ceil(|shift| - 0.05)`` rows and columns that the shift brings in from the opposite border are NaN (or, up to
    ``edge`` px, filled: below), as are the frames' own NaN pixels, shifted (each plane filled from its own nearest
    valid pixels for the shift), with every pixel whose bilinear neighbourhood touches one; a plane without any
    valid pixel stays NaN. Returns float32 frames.

    ``edge``: bands up to this width take the frames' own border values instead (temporal prediction's neighbours,
    see `EDGE_PX`): a linear spline held at its border value beyond it (``mode="nearest"``), so a band row takes the
    frame's border row, moved along the border by the shift along it (a corner, the corner pixel): a shift of 0.1 px
    puts the band 0.1 px beyond the frame's last row. The noise is that scan's own, but interpolated along the border:
    its variance is ``(1 - f)^2 + f^2`` of the scan's for a fractional shift ``f`` along the border (0.5-1; the
    propagated variance takes it as 1). (Up to 0.1.dev661 the
    band repeated the nearest row the shift brought in, whose signal lies a whole pixel further in: at the sharp
    edges of strong Stokes V that made the border pixels of temporal prediction err by more than the noise, see
    `EDGE_PX`.)
    """
    shift = np.asarray(shift, np.float64)
    frames = np.asarray(frames, np.float32)
    if not shift.any():
        return frames.copy()
    lead = frames.ndim - 2
    full = (0,) * lead + tuple(shift)
    missing = ~np.isfinite(frames)
    if missing.any():  # each plane filled from its own valid pixels; a plane without any stays NaN (zeros here)
        planes = frames.reshape(-1, *frames.shape[-2:]).copy()
        for plane, hole in zip(planes, missing.reshape(planes.shape), strict=True):
            if hole.all():
                plane[...] = 0.0
            elif hole.any():
                plane[...] = fill_nearest(plane[None], hole)[0]
        frames = planes.reshape(missing.shape)
    ny, nx = frames.shape[-2:]
    # odd sizes (one edge row or column added): no Nyquist frequency, whose sub-pixel shift a real image cannot
    # hold (an even size lost ~1.5 % of white noise per shifted axis)
    odd = np.pad(frames.astype(np.float64), [(0, 0)] * lead + [(0, 1 - ny % 2), (0, 1 - nx % 2)], mode="edge")
    periodic, smooth = _periodic_smooth(odd)
    size = odd.shape[-2:]
    workers = _fft_workers()
    spectrum = ndimage.fourier_shift(scipy.fft.rfft2(periodic, axes=(-2, -1), workers=workers), full, n=size[1])
    out = scipy.fft.irfft2(spectrum, s=size, axes=(-2, -1), workers=workers) + _shift_planes(smooth, shift, order=3)
    out = out[..., :ny, :nx].astype(np.float32)
    wide = []
    for axis, s in zip((-2, -1), shift, strict=True):
        # what wrapped around from the other border (rounded: shifts are sums of 0.01-px steps, and float residue
        # must not decide between k and k + 1 px at |shift| = k.05)
        band = math.ceil(round(abs(s) - 0.05, 6))
        if band > 0:
            index = [slice(None)] * out.ndim
            index[axis] = slice(0, band) if s > 0 else slice(max(out.shape[axis] - band, 0), None)
            if band <= edge and band < out.shape[axis]:
                # the band alone, shifted with its border values held: every band pixel lies beyond the frame's
                # border row, which is the band's own outer row, so the rows further in are not needed
                out[tuple(index)] = _shift_planes(frames[tuple(index)], shift, order=1)
            else:
                wide.append(tuple(index))
    for index in wide:  # after the fills: a corner of a wide band stays NaN
        out[index] = np.nan
    if missing.any():  # after the fills too: a hole at the border is not filled with data
        moved = _shift_planes(missing.astype(np.float32), shift, order=1)
        out[moved > 0] = np.nan
    return out


def _shift_planes(frames: np.ndarray, shift: np.ndarray, order: int) -> np.ndarray:
    """
    Each ``(y, x)`` plane of ``frames`` shifted by ``shift`` with a spline of ``order`` (`scipy.ndimage.shift`,
    ``mode="nearest"``), plane by plane: an n-D `~scipy.ndimage.shift` also filters and interpolates along the
    leading axes, whose shift is 0 (4^n taps for a cubic spline: for a scan of (Stokes, wavelength, y, x) 16 times
    the work of the 2-D one, for the same values to 1e-15 of their range).
    """
    planes = frames.reshape(-1, *frames.shape[-2:])
    out = np.empty_like(planes)
    for plane, moved in zip(planes, out, strict=True):
        ndimage.shift(plane, shift, output=moved, order=order, mode="nearest")
    return out.reshape(frames.shape)


def align_scans(data: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """
    A cube ``(scan, Stokes, wavelength, y, x)`` with each scan shifted by its row of ``shifts`` (`scan_shifts`):
    every scan on the middle one, in place (the caller's own copy).
    """
    for t in range(data.shape[0]):
        data[t] = shift_frames(data[t], shifts[t])
    return data


def intensity_index(labels) -> int | None:
    """The Stokes index whose images register the scans: Stokes I's, 0 for a cube without a Stokes axis (label
    "?": an intensity series), or `None` (no Stokes I)."""
    return labels.index("I") if "I" in labels else 0 if list(labels) == ["?"] else None


def warn_no_intensity(labels) -> None:
    """The logged warning of a series that cannot be aligned for want of Stokes I."""
    log.warning("The scans are not aligned: the cube has no Stokes I (%s) to measure their shifts on", labels)


def cube_shifts(canon, labels) -> np.ndarray | None:
    """
    `scan_shifts` of a cube ``(scan, Stokes, wavelength, y, x)``, measured on its Stokes I averaged over the
    tunings (a cube without a Stokes axis: its own); `None` for one scan, without Stokes I (with a logged warning)
    or where no step could be measured. A dask cube's Stokes I is read step by step (`StackRegistration` with
    ``all_tunings``), with the same shifts; a lazy fit, which must not read all of it, registers the stacks of scans
    it reads instead.
    """
    if canon.shape[0] < 2:
        return None
    if is_dask(canon):
        register = registration(canon, labels, all_tunings=True)
        shifts = None if register is None else register.shifts(0, canon.shape[0])
    else:
        intensity = intensity_index(labels)
        if intensity is None:
            warn_no_intensity(labels)
            return None
        with np.errstate(invalid="ignore"):  # accumulated in float64 without a float64 copy; NaN pixels: left out
            images = np.mean(canon[:, intensity], axis=1, dtype=np.float64)
        shifts = scan_shifts(images)
    return shifts if shifts is not None and shifts.any() else None


def registration(canon, labels, all_tunings: bool = False) -> StackRegistration | None:
    """A `StackRegistration` of the cube on its Stokes I, or `None` (with a logged warning) without Stokes I."""
    intensity = intensity_index(labels)
    if intensity is None:
        warn_no_intensity(labels)
        return None
    return StackRegistration(canon, intensity, all_tunings)


class StackRegistration:
    """
    Registers the stacks of consecutive scans that a lazy (dask) cube's training reads (`Noise2NoisePairs`'s
    ``register``): each scan onto the stack's middle one (``n // 2``, as `scan_shifts` does for a series), as `fit`
    aligns a cube in memory onto its middle scan, so that a pair's scans show the same signal at the same pixel.

    The shift of each step (scan t onto scan t + 1) is measured once, as `scan_shifts` measures it, on the two
    scans' Stokes I averaged over up to 3 tunings spread over the line (``waves``: those of the noise's sampled
    pairs, whose steps `fit` passes in ``steps``): only for the scans that the pool and the calibration read,
    `BATCH` steps' images at a time, never the whole series. Shifts add up along a stack.

    Parameters
    ----------
    data
        The canonical cube ``(scan, Stokes, wavelength, y, x)``, dask-backed, in any unit.
    intensity : int
        The Stokes index whose images register the scans (`intensity_index`).
    all_tunings : bool
        Measure on Stokes I averaged over all tunings instead, as `cube_shifts` does (temporal prediction of a lazy
        cube, which reads the whole cube anyway): the steps, and so the shifts, are those of the cube in memory.
    """

    #: Steps whose images are computed together (at most twice as many frames of Stokes I in memory, in float64).
    BATCH = 8

    def __init__(self, data, intensity: int, all_tunings: bool = False) -> None:
        self.data, self.intensity = data, intensity
        n_w = data.shape[2]
        spread = np.linspace(0, n_w - 1, n_w if all_tunings else min(3, n_w))
        self.waves = np.unique(spread.round().astype(int)).tolist()
        self.steps: dict[int, np.ndarray] = {}  # t: the shift that registers scan t onto scan t + 1
        self._with_data: dict[int, bool] = {}  # scan: whether it has any finite Stokes I pixel

    def measure(self, first, n: int) -> None:
        """The steps of the stacks of ``n`` scans from each scan of ``first`` that are not measured yet."""
        need = sorted({u for t in first for u in range(t, t + n - 1)} - self.steps.keys())
        unmeasured = []
        for b in range(0, len(need), self.BATCH):
            batch = need[b : b + self.BATCH]
            images = self._images(sorted({v for u in batch for v in (u, u + 1)}))
            for u in batch:
                # a scan without data (a lost frame) is bridged as `scan_shifts` does: the step onto it is 0 and
                # the step from it registers the last scan with data before it, so that shifts add up over the gap
                last = u
                while last >= 0 and not self._has_data(images, last):
                    last -= 1
                if last < 0 or not self._has_data(images, u + 1):
                    self.steps[u] = np.zeros(2)
                    continue
                if last not in images:  # (a scan before the gap, known from an earlier batch)
                    images.update(self._images([last]))
                step, failed = _steps(np.stack([images[last], images[u + 1]]))
                self.steps[u] = -step[1]  # registers scan u (or the last one with data before it) onto scan u + 1
                unmeasured += [u + 1] if failed else []
        if unmeasured:  # one warning for the lot
            _warn_unmeasured(unmeasured)

    def _images(self, scans: list[int]) -> dict[int, np.ndarray]:
        """Stokes I averaged over `waves` of each scan of ``scans``, in float64 (read from dask together)."""
        # the mean over the tunings inside dask: one image per scan in memory
        lazy = [self.data[v, self.intensity, self.waves].astype(np.float64).mean(axis=0) for v in scans]
        if is_dask(self.data):
            import dask  # (an optional dependency: a cube in memory registers its sampled pairs without it)

            lazy = dask.compute(*lazy)
        return dict(zip(scans, lazy, strict=True))

    def _has_data(self, images: dict[int, np.ndarray], scan: int) -> bool:
        """Whether ``scan`` has any finite Stokes I pixel (read into ``images`` if it is not there yet)."""
        if scan not in self._with_data:
            if scan not in images:
                images.update(self._images([scan]))
            self._with_data[scan] = bool(np.isfinite(images[scan]).any())
        return self._with_data[scan]

    def shifts(self, t: int, n: int) -> np.ndarray:
        """``(n, 2)`` shifts (y, x) that register scans ``t .. t + n - 1`` onto scan ``t + n // 2``."""
        self.measure([t], n)
        steps = np.array([self.steps[u] for u in range(t, t + n - 1)]).reshape(-1, 2)
        to_first = np.concatenate([np.zeros((1, 2)), np.cumsum(-steps, axis=0)])  # scan t + i onto scan t
        return to_first - to_first[n // 2]

    def _onto(self, t: int, n: int, reference: int | None) -> np.ndarray:
        """`shifts` onto the scan at index ``reference`` of the stack (`None`: the middle one)."""
        shifts = self.shifts(t, n)
        return shifts if reference is None else shifts - shifts[reference]

    def margin(self, first, n: int, reference=None) -> int:
        """Columns (px) to read beyond a crop on each side, so that shifting the stacks (onto ``reference``, as in
        `__call__`) brings in data, not NaN."""
        self.measure(first, n)
        refs = reference if isinstance(reference, list | tuple) else [reference] * len(first)
        widest = max((np.abs(self._onto(t, n, r)[:, 1]).max() for t, r in zip(first, refs, strict=True)), default=0)
        return math.ceil(widest) + 1

    def __call__(self, first, stacks: list[np.ndarray], crop: slice | None = None, reference=None) -> list[np.ndarray]:
        """
        The ``stacks`` (``(n, ..., y, x)``, scans ``t .. t + n - 1`` for each ``t`` of ``first``), registered onto
        the scan at index ``reference`` of each (one index for all, or one per stack; `None`: the middle one,
        ``n // 2``): new arrays, NaN where a shift brings in no data (`shift_frames`), then cut to the columns
        ``crop``.
        """
        if not stacks:
            return []
        self.measure(first, stacks[0].shape[0])
        refs = reference if isinstance(reference, list | tuple) else [reference] * len(stacks)
        out = []
        for t, stack, ref in zip(first, stacks, refs, strict=True):
            shifts = self._onto(t, stack.shape[0], ref)
            moved = np.stack([shift_frames(frame, s) for frame, s in zip(stack, shifts, strict=True)])
            out.append(moved if crop is None else np.ascontiguousarray(moved[..., crop]))
        return out
