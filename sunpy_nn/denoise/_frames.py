"""
The denoiser's network on frames: pixel shuffling, missing pixels, alignment padding and tiles, Monte-Carlo dropout,
and in temporal mode the inverse-variance combination of the prediction with the scan itself.
"""

from __future__ import annotations

import warnings

import numpy as np

from sunpy_nn.nn import UNet, run_tiled
from sunpy_nn.utils import fill_nearest


class _FramesMixin:
    """`Denoiser`'s network (``model``, ``shuffle``) on normalised ``(C, Y, X)`` frames: for training and prediction."""

    model: UNet | None

    def _run(
        self, frame: np.ndarray, dev, tile_size, n_out, model: UNet | None = None, precision="float32", compile=False
    ):
        """Denoise one (C, Y, X) normalised frame: returns (mean, log_var), NaN where the input was."""
        d = self.shuffle
        if d == 1 or min(frame.shape[1:]) < 2 * d:
            return self._run_one(frame, dev, tile_size, n_out, model, precision, compile)
        # Pixel-shuffle down-sampling: each of the d x d phases is an image whose noise is nearly white
        mean = np.empty((n_out, *frame.shape[1:]), np.float32)
        log_var = np.empty((1, *frame.shape[1:]), np.float32)
        for py in range(d):
            for px in range(d):
                phase = np.ascontiguousarray(frame[:, py::d, px::d])
                mean[:, py::d, px::d], log_var[:, py::d, px::d] = self._run_one(
                    phase, dev, tile_size, n_out, model, precision, compile
                )
        return mean, log_var

    def _run_one(self, frame, dev, tile_size, n_out, model, precision, compile):
        """`_run` on one image, without pixel shuffling."""
        model = self.model if model is None else model
        missing = ~np.isfinite(frame).all(axis=0)
        if missing.all():
            return np.full((n_out, *frame.shape[1:]), np.nan, frame.dtype), np.full_like(frame[:1], np.nan)
        frame = fill_nearest(frame, missing)
        a = model.align
        ny, nx = frame.shape[1:]
        py, px = (-ny) % a, (-nx) % a
        padded = np.pad(frame, ((0, 0), (0, py), (0, px)), mode="reflect") if (py or px) else frame
        out = run_tiled(
            model,
            padded,
            halo=model.receptive_radius,
            tile_size=tile_size,
            align=a,
            device=dev,
            progress=False,
            precision=precision,
            compile=compile,
        )[:, :ny, :nx]
        if missing.any():
            out[:, missing] = np.nan
        return out[:n_out], out[n_out:]

    def _denoise_frames(
        self,
        frames,
        context,
        sigma,
        scale,
        dev,
        tile_size,
        n_out,
        model,
        mc_net,
        mc_samples,
        precision,
        compile,
        frame_var: float = 1.0,
    ):
        """
        Denoised value and uncertainty (in data units) of ``(C, Y, X)`` frames of one Stokes parameter, of noise
        ``sigma``; ``scale`` is the calibration factor of the aleatoric uncertainty (`Denoiser.calibration`).

        With ``mc_net`` (a network whose dropout may be switched on), the epistemic variance of ``mc_samples``
        Monte-Carlo dropout passes is added to the aleatoric one. In temporal mode, ``context`` holds the ``2k``
        neighbouring scans ``(2k C, Y, X)``: the network predicts the frames from them alone, and that prediction
        ``p`` (variance ``v``) is combined with the frames themselves by their inverse variances:
        ``p + v / (v + n) (x - p)``, of variance ``v n / (v + n)``, where ``n`` (``frame_var``) is the frames' own
        noise variance in units of ``sigma``: 1 on the cube the denoiser was fitted on, ``(noise here / sigma)^2``
        on another cube.
        """
        x = frames / sigma
        inp = x
        if context is not None:
            # A pixel missing in one neighbouring scan takes the mean of the others there (scan t's value where all
            # are missing), so that a hole in one scan does not spread to its neighbours.
            inp = context / sigma
            groups = inp.reshape(-1, *x.shape)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: the mean is NaN, filled below
                fill = np.nanmean(groups, axis=0)
            fill = np.where(np.isfinite(fill), fill, x)
            inp = np.where(np.isfinite(groups), groups, fill[None]).reshape(inp.shape)
        mean, log_var = self._run(inp, dev, tile_size, n_out, model, precision, compile)
        var = np.exp(log_var) * scale**2 * np.ones_like(mean)
        if mc_net is not None:
            mc_net.mc_dropout(True)
            try:
                draws = [
                    self._run(inp, dev, tile_size, n_out, mc_net, precision, compile)[0] for _ in range(mc_samples)
                ]
            finally:
                mc_net.mc_dropout(False)
            var = var + np.stack(draws).var(axis=0)
        if context is not None:  # NaN where scan t is NaN: missing pixels stay missing
            gain = var / (var + frame_var)
            mean, var = mean + gain * (x - mean), gain * frame_var + 0 * x
        return mean * sigma, np.sqrt(var) * sigma
