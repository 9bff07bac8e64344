"""
The spectral PCA basis of the denoiser: each Stokes parameter's tunings rotated onto its principal components.

An orthonormal rotation of the wavelength axis keeps noise that is independent and of one level at every tuning so
in every component, so the network denoises the component images as it would the monochromatic ones. The solar
signal, though, is concentrated in the leading components (a few for Zeeman-split profiles), where it stands far
above the noise, and the trailing ones hold almost only noise, which the network removes nearly completely. The
figures are in the denoising guide (``benchmarks/denoise_science.py``).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from sunpy_nn.nn.lazy import is_dask

__all__ = ["from_basis", "pca_basis", "sd_from_basis", "to_basis"]

log = logging.getLogger(__name__)


class _SpectralMixin:
    """`Denoiser`'s spectral basis (``spectral_pca``, ``spectral_basis``, ``spectral_eigenvalues``): fitted by
    `Denoiser.fit`, applied by `Denoiser.predict`."""

    spectral_basis: dict[str, np.ndarray]
    spectral_eigenvalues: dict[str, list[float]]

    def _spectral_fit(self, normed, labels, selected) -> tuple[dict, dict]:
        """The basis and eigenvalues of each selected Stokes parameter for `fit` (empty: tunings as they are)."""
        if self.model is not None:  # a warm start keeps the basis the network learnt in
            self._check_basis(labels, selected, "continue training on those")
            return self.spectral_basis, self.spectral_eigenvalues
        n_t, n_w = normed.shape[0], normed.shape[2]
        use = self.mode == "image" if self.spectral_pca is None else self.spectral_pca
        if not use or n_w < 2:
            return {}, {}
        basis, eigen = {}, {}
        for s in selected:
            frames = normed[:, s]
            if is_dask(frames):  # a sample, as for the noise levels: a few scans, every other pixel
                scans = np.unique(np.linspace(0, n_t - 1, min(4, n_t)).round().astype(int))
                frames = np.asarray(frames[scans][..., ::2, ::2])
            try:
                basis[labels[s]], values = pca_basis(frames)
            except ValueError as exc:
                if self.spectral_pca:  # asked for: say why it cannot be
                    raise
                log.warning("%s; denoising the tunings themselves", exc)
                return {}, {}
            eigen[labels[s]] = [float(v) for v in values]
        return basis, eigen

    def _check_basis(self, labels, selected, fix: str) -> None:
        """A `ValueError` when the denoiser has a basis but not for every selected Stokes parameter."""
        missing = [labels[s] for s in selected if self.spectral_basis and labels[s] not in self.spectral_basis]
        if missing:
            raise ValueError(
                f"This denoiser works on the spectral components of Stokes {sorted(self.spectral_basis)} and has no "
                f"basis for Stokes {missing}: {fix}, or train a new Denoiser() on them"
            )

    def _to_components(self, data, labels, selected, basis=None, fill=True, own=False):
        """
        A copy of canonical ``data`` with the selected Stokes parameters as component images (``data`` itself when
        there is no basis). ``fill``: partly NaN spectra are filled first (prediction); otherwise they are NaN in
        every component (training: a filled value is no measurement). ``own``: ``data`` is a float32 array of the
        caller's own (fit's scaled cube), rotated in place rather than copied.
        """
        basis = self.spectral_basis if basis is None else basis
        if not basis:
            return data
        prior = {lab: np.asarray(self.spectral_eigenvalues.get(lab, []), np.float64) for lab in basis}

        def rotated(s):
            lab = labels[s]
            return to_basis(data[:, s], basis[lab], prior[lab] if fill and len(prior[lab]) else None)

        if is_dask(data):
            import dask.array as da

            return da.stack([rotated(s) if s in selected else data[:, s] for s in range(data.shape[1])], axis=1)
        out = data if own else np.array(data, dtype=np.float32)  # never the user's array
        for s in selected:
            out[:, s] = rotated(s)
        return out

    def _from_components(self, den, sd, canon, labels, selected):
        """Denoised component images and their standard deviations (selected Stokes parameters, canonical order)
        back at the tunings, NaN where ``canon`` (the input, at the tunings) is."""
        if not self.spectral_basis:
            return den, sd
        if is_dask(den):
            import dask.array as da

            bases = [self.spectral_basis[labels[s]] for s in selected]
            values = da.stack([from_basis(den[:, k], b) for k, b in enumerate(bases)], axis=1)
            sds = da.stack([sd_from_basis(sd[:, k], b) for k, b in enumerate(bases)], axis=1)
            nan = da.isnan(canon[:, list(selected)])
            return da.where(nan, np.nan, values), da.where(nan, np.nan, sds)
        for k, s in enumerate(selected):
            basis = self.spectral_basis[labels[s]]
            nan = np.isnan(canon[:, s])
            den[:, k] = np.where(nan, np.nan, from_basis(den[:, k], basis))
            sd[:, k] = np.where(nan, np.nan, sd_from_basis(sd[:, k], basis))
        return den, sd


def pca_basis(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    The principal components of one Stokes parameter's spectra.

    Parameters
    ----------
    frames : `numpy.ndarray`
        ``(time, wavelength, y, x)``, in units of the noise. Pixels that are NaN at any wavelength are left out.

    Returns
    -------
    basis : `numpy.ndarray`
        ``(wavelength, component)``, orthonormal columns in decreasing order of their eigenvalue, each signed so
        that its largest entry is positive (well-separated leading components are then the same on every machine;
        the order of near-equal noise components is not).
    eigenvalues : `numpy.ndarray`
        The mean square of each component over the pixels, in units of the noise squared: 1 for a component of
        pure noise.

    Raises
    ------
    ValueError
        Fewer spectra with a value at every wavelength than wavelengths (e.g. a tuning that is NaN everywhere).

    Notes
    -----
    The second-moment matrix (not the covariance: the mean stays in the components, so the rotation is exactly
    invertible and needs no offset). Spectral principal components of Stokes profiles: Rees et al. 2000, A&A, 355,
    759. No component is dropped: the network denoises each. The rotation keeps the noise of the components
    independent and at the noise level only where the noise is independent between tunings and of one level at
    all of them; where it is not (e.g. photon noise lower in a deep line core), the components mix those levels.
    """
    n_w = frames.shape[1]
    x = np.moveaxis(np.asarray(frames, np.float64), 1, 0).reshape(n_w, -1)
    x = x[:, np.isfinite(x).all(axis=0)]
    if x.shape[1] < n_w:
        raise ValueError(
            f"Too few pixels with a value at all {n_w} wavelengths ({x.shape[1]}) for the spectral PCA basis: mask "
            "or drop the tunings without data, or use spectral_pca=False"
        )
    moment = x @ x.T / x.shape[1]
    values, vectors = np.linalg.eigh(moment)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(n_w)])
    return vectors * np.where(signs == 0, 1.0, signs), values


def _fill_gaps(frames: np.ndarray, basis: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """
    ``frames`` (time, wavelength, y, x) with the NaN wavelengths of partly NaN pixels filled from the components
    fitted to the others (gappy PCA, Connolly & Szalay 1999, AJ 117, 2052), so that a gap at one wavelength does not
    spread to the others through the rotation. Pixels NaN at every wavelength stay NaN.

    The fit is regularised by each component's signal variance, ``prior - 1`` (eigenvalues in units of the noise
    squared, floored at 1e-3): the posterior mean ``c = (A^T A + diag(1 / s))^-1 A^T x``, in which the noise level
    cancels, so that a spectrum with few values left cannot be fitted to wild values (unregularised, 3 of 9 tunings
    left gave fills of thousands of sigma).
    """
    nan = np.isnan(frames)
    gaps = nan.any(axis=1) & ~nan.all(axis=1)  # (time, y, x)
    if not gaps.any():
        return frames
    out = frames.copy()
    spectra = np.moveaxis(out, 1, -1)  # a view: (time, y, x, wavelength)
    patterns = nan.transpose(0, 2, 3, 1)[gaps]
    where = np.argwhere(gaps)
    inverse_prior = np.diag(1.0 / np.maximum(np.asarray(prior, np.float64) - 1.0, 1e-3))
    for pattern in np.unique(patterns, axis=0):
        rows = where[(patterns == pattern).all(axis=1)]
        design = basis[~pattern]
        sel = (rows[:, 0], rows[:, 1], rows[:, 2])
        coef = np.linalg.solve(design.T @ design + inverse_prior, design.T @ spectra[sel][:, ~pattern].T)
        filled = spectra[sel]
        filled[:, pattern] = (basis[pattern] @ coef).T
        spectra[sel] = filled
    return out


def to_basis(frames, basis: np.ndarray, prior: np.ndarray | None = None):
    """
    One Stokes parameter's frames at the tunings as component images.

    Parameters
    ----------
    frames : `numpy.ndarray` or `dask.array.Array`
        ``(time, wavelength, y, x)``.
    basis : `numpy.ndarray`
        ``(wavelength, component)``, orthonormal (`pca_basis`).
    prior : `numpy.ndarray`, optional
        The components' eigenvalues (`pca_basis`): partly NaN spectra are filled first (`_fill_gaps`). `None`: a
        NaN at any wavelength makes the pixel NaN in every component.

    Returns
    -------
    `numpy.ndarray` or `dask.array.Array`
        ``(time, component, y, x)``, float32; a dask array is rotated lazily, block by block of whole spectra.
    """
    if is_dask(frames):
        import dask.array as da

        whole = frames.rechunk({1: -1}).astype(np.float64)
        if prior is not None:
            whole = whole.map_blocks(functools.partial(_fill_gaps, basis=basis, prior=prior), dtype=np.float64)
        return da.einsum("wc,twyx->tcyx", basis, whole).astype(np.float32)
    frames = np.asarray(frames, np.float64)
    if prior is not None:
        frames = _fill_gaps(frames, basis, prior)
    return np.einsum("wc,twyx->tcyx", basis, frames).astype(np.float32)


def from_basis(components, basis: np.ndarray):
    """
    Component images back at the tunings.

    Parameters
    ----------
    components : `numpy.ndarray` or `dask.array.Array`
        ``(time, component, y, x)``.
    basis : `numpy.ndarray`
        ``(wavelength, component)``, orthonormal.

    Returns
    -------
    `numpy.ndarray` or `dask.array.Array`
        ``(time, wavelength, y, x)``, float32.
    """
    if is_dask(components):
        import dask.array as da

        return da.einsum("wc,tcyx->twyx", basis, components.rechunk({1: -1}).astype(np.float64)).astype(np.float32)
    return np.einsum("wc,tcyx->twyx", basis, np.asarray(components, np.float64)).astype(np.float32)


def sd_from_basis(sd, basis: np.ndarray):
    """
    The standard deviation at each tuning from the components' ``sd`` (``(time, component, y, x)``), their errors
    taken as independent: ``sqrt(sum_c basis[w, c]^2 sd_c^2)``, as `from_basis` returns it (the same shapes and
    types).
    """
    return np.sqrt(from_basis(sd**2, basis**2))
