"""
The spectral PCA basis of the denoiser: each Stokes parameter's tunings rotated onto its principal components.

An orthonormal rotation of the wavelength axis keeps white noise white and at the same level, so the network
denoises the component images as it would the monochromatic ones. The solar signal, though, is concentrated in the
leading components (a few for Zeeman-split profiles), where it stands far above the noise, and the trailing ones
hold almost only noise, which the network removes nearly completely. Measured on the kG cubes of
``benchmarks/denoise_science.py`` (6 scans x 9 tunings x 128^2): Q/U/V rms error 0.22/0.22/0.28 -> 0.19/0.19/0.23 of
the noise with white noise, 0.42/0.42/0.48 -> 0.32/0.32/0.36 with correlated noise.
"""

from __future__ import annotations

import numpy as np

from sunpy_nn.nn.lazy import is_dask

__all__ = ["from_basis", "pca_basis", "to_basis", "variance_from_basis"]


class _SpectralMixin:
    """`Denoiser`'s spectral basis (``spectral_pca``, ``spectral_basis``, ``spectral_eigenvalues``): fitted by
    `Denoiser.fit`, applied by `Denoiser.predict`."""

    spectral_basis: dict[str, np.ndarray]

    def _spectral_fit(self, normed, labels, selected) -> tuple[dict, dict]:
        """The basis and eigenvalues of each selected Stokes parameter for `fit` (empty: tunings as they are)."""
        if self.model is not None:  # a warm start keeps the basis the network learnt in
            missing = [labels[s] for s in selected if self.spectral_basis and labels[s] not in self.spectral_basis]
            if missing:
                raise ValueError(
                    f"This denoiser denoises spectral components of {sorted(self.spectral_basis)} and has no basis for "
                    f"Stokes {missing}: continue training on those, or train a new Denoiser()"
                )
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
            basis[labels[s]], values = pca_basis(frames)
            eigen[labels[s]] = [float(v) for v in values]
        return basis, eigen

    def _to_components(self, data, labels, selected, basis=None):
        """A copy of canonical ``data`` with the selected Stokes parameters as component images (or ``data``
        itself when there is no basis)."""
        basis = self.spectral_basis if basis is None else basis
        if not basis:
            return data
        if is_dask(data):
            import dask.array as da

            planes = [
                to_basis(data[:, s], basis[labels[s]]) if s in selected else data[:, s] for s in range(data.shape[1])
            ]
            return da.stack(planes, axis=1)
        out = np.array(data, dtype=np.float32)  # never the caller's array
        for s in selected:
            out[:, s] = to_basis(data[:, s], basis[labels[s]])
        return out

    def _from_components(self, den, sd, canon, labels, selected):
        """Denoised component images and their standard deviations (selected Stokes parameters, canonical order)
        back at the tunings, NaN where ``canon`` (the input, at the tunings) is."""
        if not self.spectral_basis:
            return den, sd
        if is_dask(den):
            import dask.array as da

            pairs = [
                (
                    from_basis(den[:, k], self.spectral_basis[labels[s]]),
                    variance_from_basis(sd[:, k], self.spectral_basis[labels[s]]),
                )
                for k, s in enumerate(selected)
            ]
            nan = da.isnan(canon[:, list(selected)])
            return (
                da.where(nan, np.nan, da.stack([p[0] for p in pairs], axis=1)),
                da.where(nan, np.nan, da.stack([p[1] for p in pairs], axis=1)),
            )
        for k, s in enumerate(selected):
            basis = self.spectral_basis[labels[s]]
            nan = np.isnan(canon[:, s])
            den[:, k] = np.where(nan, np.nan, from_basis(den[:, k], basis))
            sd[:, k] = np.where(nan, np.nan, variance_from_basis(sd[:, k], basis))
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
        that its largest entry is positive (the same basis on every machine).
    eigenvalues : `numpy.ndarray`
        The mean square of each component over the pixels, in units of the noise squared: 1 for a component of
        pure noise.

    Notes
    -----
    The second-moment matrix (not the covariance: the mean stays in the components, so the rotation is exactly
    invertible and needs no offset). Spectral principal components of Stokes profiles: Rees et al. 2000, A&A, 355,
    759. No component is dropped: the network denoises each.
    """
    n_w = frames.shape[1]
    x = np.moveaxis(np.asarray(frames, np.float64), 1, 0).reshape(n_w, -1)
    x = x[:, np.isfinite(x).all(axis=0)]
    if x.shape[1] < n_w:
        raise ValueError(
            f"Too few pixels with a value at all {n_w} wavelengths ({x.shape[1]}) for the spectral PCA basis: "
            "use spectral_pca=False"
        )
    moment = x @ x.T / x.shape[1]
    values, vectors = np.linalg.eigh(moment)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(n_w)])
    return vectors * np.where(signs == 0, 1.0, signs), values


def _fill_gaps(frames: np.ndarray, basis: np.ndarray, n_fit: int) -> np.ndarray:
    """
    ``frames`` (time, wavelength, y, x) with the NaN wavelengths of partly NaN pixels filled from the leading
    ``n_fit`` components fitted to the others (gappy PCA, Connolly & Szalay 1999, AJ 117, 2052), so that a gap at
    one wavelength does not spread to the others through the rotation. Pixels NaN at every wavelength stay NaN.
    """
    nan = np.isnan(frames)
    gaps = nan.any(axis=1) & ~nan.all(axis=1)  # (time, y, x)
    if not gaps.any():
        return frames
    out = frames.copy()
    spectra = np.moveaxis(out, 1, -1)  # a view: (time, y, x, wavelength)
    patterns = nan.transpose(0, 2, 3, 1)[gaps]
    where = np.argwhere(gaps)
    for pattern in np.unique(patterns, axis=0):
        rows = where[(patterns == pattern).all(axis=1)]
        ok = ~pattern
        k = min(n_fit, int(ok.sum()))
        design = basis[ok][:, :k]
        sel = (rows[:, 0], rows[:, 1], rows[:, 2])
        coef, *_ = np.linalg.lstsq(design, spectra[sel][:, ok].T, rcond=None)
        filled = spectra[sel]
        filled[:, pattern] = (basis[pattern][:, :k] @ coef).T
        spectra[sel] = filled
    return out


def to_basis(frames, basis: np.ndarray, n_fit: int = 3):
    """
    One Stokes parameter's ``(time, wavelength, y, x)`` frames as ``(time, component, y, x)`` component images.

    In memory, partly NaN spectra are filled first (`_fill_gaps`); a dask array is rotated lazily, block by block
    of whole spectra.
    """
    if is_dask(frames):
        import dask.array as da

        whole = frames.rechunk({1: -1})
        filled = whole.map_blocks(lambda b: _fill_gaps(np.asarray(b, np.float64), basis, n_fit), dtype=np.float64)
        return da.einsum("wc,twyx->tcyx", basis, filled).astype(np.float32)
    filled = _fill_gaps(np.asarray(frames, np.float64), basis, n_fit)
    return np.einsum("wc,twyx->tcyx", basis, filled).astype(np.float32)


def from_basis(components, basis: np.ndarray):
    """Component images ``(time, component, y, x)`` back to the tunings ``(time, wavelength, y, x)``."""
    if is_dask(components):
        import dask.array as da

        return da.einsum("wc,tcyx->twyx", basis, components.rechunk({1: -1}).astype(np.float64)).astype(np.float32)
    return np.einsum("wc,tcyx->twyx", basis, np.asarray(components, np.float64)).astype(np.float32)


def variance_from_basis(sd, basis: np.ndarray):
    """
    The standard deviation at each tuning from the components', taking their errors as independent:
    ``var_w = sum_c basis[w, c]^2 var_c``.
    """
    if is_dask(sd):
        import dask.array as da

        var = sd.rechunk({1: -1}).astype(np.float64) ** 2
        return da.sqrt(da.einsum("wc,tcyx->twyx", basis**2, var)).astype(np.float32)
    var = np.asarray(sd, np.float64) ** 2
    return np.sqrt(np.einsum("wc,tcyx->twyx", basis**2, var)).astype(np.float32)
