"""
The denoiser's network on frames: pixel shuffling, missing pixels, alignment padding and tiles, Monte-Carlo dropout,
and in temporal mode the inverse-variance combination of the prediction with the scan itself.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from sunpy_nn.nn import UNet, run_tiled
from sunpy_nn.noise import _unit_noise
from sunpy_nn.utils import fill_nearest

#: Temporal mode's propagated noise (`_FramesMixin._propagated_variance`): how many noisy copies of the prediction the
#: network is run on, and the window (px) the variance over them is averaged over. Each draw is one more run of the
#: network per frame, at prediction and in the calibration. Two draws over 7 x 7 px gave the rms error and the
#: coverage of four over 5 x 5 on the five synthetic cubes of ``benchmarks/denoise_science.py`` (within 1 sigma
#: 0.67-0.74 against 0.66-0.72, one GPU run each: ``python benchmarks/denoise_bootstrap.py``), with three runs of the
#: network per frame at prediction instead of five. One draw, against the prediction itself, made the bars too wide
#: (0.72-0.76 within 1 sigma): the network shrinks the noisy copies towards a smoother image than the prediction, and
#: that offset counts as variance.
BOOTSTRAP_DRAWS = 2
PROPAGATION_WINDOW = 7
#: Temporal denoisers saved before format 7 were calibrated against noise injection: antithetic pairs of draws of this
#: fraction of the noise, how many (`_FramesMixin._injected_variance`).
INJECTION = 0.5
INJECTION_DRAWS = 2
INJECTION_WINDOW = 5  # px, as they were calibrated


def _window_mean(v: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``(C, Y, X)`` images over ``size x size`` windows, NaN pixels left out (and kept NaN)."""
    ok = np.isfinite(v)
    total = ndimage.uniform_filter(np.where(ok, v, 0.0), size=(1, size, size), mode="reflect")
    count = ndimage.uniform_filter(ok.astype(v.dtype), size=(1, size, size), mode="reflect")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, total / count, np.nan).astype(v.dtype)


def _fill_channels(frame: np.ndarray, finite: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """
    ``(C, Y, X)`` ``frame`` (spectral mode: channels are tunings) whose missing values (not ``finite``) take the mean
    of the channels that have data at that pixel, and where no channel has any (``empty``) the nearest valid pixel's:
    nothing missing spreads into valid pixels through the network, and the fill is local (the same in a tile of a
    lazy cube as in the whole frame).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no channel, at "empty" pixels: filled next
        mean = np.nanmean(frame, axis=0)
    return fill_nearest(np.where(finite, frame, mean[None]), empty)


class _FramesMixin:
    """`Denoiser`'s network (``model``, ``shuffle``) on normalised ``(C, Y, X)`` frames: for training and prediction."""

    model: UNet | None
    #: The bootstrap's (draws, window in px) this denoiser is calibrated with: set by fit and load (a class default
    #: for a denoiser that has neither, whose prediction would fail first).
    _bootstrap: tuple[int, int] = (BOOTSTRAP_DRAWS, PROPAGATION_WINDOW)

    def _run(
        self, frame: np.ndarray, dev, tile_size, n_out, model: UNet | None = None, precision="float32", compile=False
    ):
        """Denoise one (C, Y, X) normalised frame: returns (mean, log_var), NaN where the input was."""
        d = self.shuffle
        if d == 1 or min(frame.shape[1:]) < 2 * d:
            return self._run_one(frame, dev, tile_size, n_out, model, precision, compile)
        # Pixel-shuffle down-sampling: each of the d x d phases is an image whose noise is nearly white
        mean = np.empty((n_out, *frame.shape[1:]), np.float32)
        log_var = None  # one channel, or none from a network without the variance head (`_run_mean`)
        for py in range(d):
            for px in range(d):
                phase = np.ascontiguousarray(frame[:, py::d, px::d])
                mean[:, py::d, px::d], v = self._run_one(phase, dev, tile_size, n_out, model, precision, compile)
                if log_var is None:
                    log_var = np.empty((v.shape[0], *frame.shape[1:]), np.float32)
                log_var[:, py::d, px::d] = v
        return mean, log_var

    def _run_mean(self, frame, dev, tile_size, n_out, model=None, precision="float32", compile=False) -> np.ndarray:
        """`_run`'s mean alone, from the network without its variance head (`UNet.mean_network`): the same values
        for about 60 % of the arithmetic, for the runs whose variance is not used (the bootstrap's draws, the
        Monte-Carlo dropout draws)."""
        net = (self.model if model is None else model).mean_network()
        return self._run(frame, dev, tile_size, n_out, net, precision, compile)[0]

    def _run_one(self, frame, dev, tile_size, n_out, model, precision, compile):
        """`_run` on one image, without pixel shuffling."""
        model = self.model if model is None else model
        finite = np.isfinite(frame)
        # Spectral mode: a pixel missing only some tunings keeps the others (and no channel has data where "empty");
        # image mode: a pixel missing any channel (a neighbouring scan, in temporal mode) is missing, as it was.
        empty = ~finite.any(axis=0) if self.mode == "spectral" else ~finite.all(axis=0)
        if empty.all():  # (the log-variance: one channel, none without the variance head)
            n_var = int(model.variance_head)
            return np.full((n_out, *frame.shape[1:]), np.nan, frame.dtype), np.full_like(frame[:n_var], np.nan)
        # The input channels of output channel c (c, c + n_out, ...: the tunings, neighbour by neighbour in temporal
        # mode) that all lack data there.
        gone = None  # spectral mode: per output channel; image mode: `empty` for all
        if self.mode == "spectral" and not finite.all():
            gone = [~finite[c::n_out].any(axis=0) for c in range(n_out)]
            frame = _fill_channels(frame, finite, empty)
        elif empty.any():
            frame = fill_nearest(frame, empty)
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
        if gone is not None:
            for c in range(n_out):
                out[c, gone[c]] = np.nan
        out[:, empty] = np.nan  # the variance head's one channel: where no tuning has data (image mode: all)
        return out[:n_out], out[n_out:]

    def _propagated_variance(
        self, inp: np.ndarray, correlation: float, run, mean: np.ndarray | None = None, level: float = 1.0
    ):
        """
        Variance of the network's output that the noise of its input ``inp`` (``(C, Y, X)``: the ``2k`` neighbouring
        scans, in noise units) propagates into it, by a parametric bootstrap: the prediction ``mean`` (``run(inp)``
        if `None`; ``run`` is the network on an input: the mean) stands for the signal of every neighbouring scan,
        and ``run`` on `BOOTSTRAP_DRAWS` copies of it plus noise of variance ``level`` (the neighbours' noise in
        units of the training noise: 1 on the cube the denoiser was fitted on) and the cube's spatial correlation
        (``correlation``: a Gaussian sigma in px, 0 for white noise), drawn with a fixed seed, gives the variance
        over the draws, averaged over `PROPAGATION_WINDOW` px windows. Returns ``(n_out, Y, X)``. The draws are at the
        neighbours' own level, not at the training level scaled by ``level`` afterwards: the network is not linear
        there (a denoiser fitted on the correlated cube of ``benchmarks/denoise_reuse.py`` and applied to the same
        scene at 1.4 times the noise: 57.5 % of the errors within 1 sigma with the scaled variance, 72.1 % with draws
        at that level). A denoiser uses
        the draws and window it was calibrated with (``_bootstrap``, set by fit and load: 4 draws over 5 px in files
        of format 7, before the settings were saved).

        Temporal mode's variance head learns its prediction's error against scan t, whose noise (variance 1)
        dwarfs that error (a few per cent of it): trained and calibrated on it, the head misses the noise of the
        neighbouring scans that passes through the network: 0.05 predicted for a 0.2 error (in noise units) where
        the signal is weak, measured on the fast-evolving cube of ``benchmarks/denoise_science.py``. The network is
        not linear at its noise level: its slope at the noisy input (noise injection, as before format 7) gave 1.8-1.9
        times the variance of its output over noise realisations where a spectral component holds only noise
        (0.0080-0.0083 for 0.0044-0.0046, noise units squared; white cube, Stokes V, noise-free neighbours plus 8
        noise draws: ``python benchmarks/denoise_propagation.py``), and 11-41 % too much where it holds the signal;
        the bootstrap gave 0.0047-0.0048 there, and 4-18 % too little where the signal is (the prediction is
        smoother than the signal); these with 4 draws over 5 px.
        """
        # "injection": a temporal file before format 7, whose head was calibrated against it (set by load)
        if getattr(self, "_propagation", "bootstrap") == "injection":  # a slope: its variance scales with the level
            return level * self._injected_variance(inp, correlation, run)
        rng = np.random.default_rng(0)  # fixed: the same input gives the same uncertainty
        if mean is None:
            mean = run(inp)
        proxy = np.tile(np.asarray(mean, inp.dtype), (inp.shape[0] // mean.shape[0], 1, 1))
        n_draws, window = self._bootstrap
        std = np.float32(np.sqrt(level))  # 1 (exactly) on the fitted cube: its draws are those of the calibration
        draws = [run(proxy + std * _unit_noise(rng, inp.shape, correlation, inp.dtype)) for _ in range(n_draws)]
        return _window_mean(np.var(draws, axis=0, ddof=1), window)

    def _injected_variance(self, inp: np.ndarray, correlation: float, run) -> np.ndarray:
        """
        `_propagated_variance` as temporal denoisers saved before format 7 were calibrated: to first order, from
        ``run`` on ``inp +- c eps`` (``c`` = `INJECTION`), ``((f+ - f-) / 2c)^2`` averaged over `INJECTION_DRAWS`.
        """
        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(INJECTION_DRAWS):
            eps = _unit_noise(rng, inp.shape, correlation, inp.dtype) * np.float32(INJECTION)
            total = total + ((run(inp + eps) - run(inp - eps)) / (2 * INJECTION)) ** 2
        return _window_mean(total / INJECTION_DRAWS, INJECTION_WINDOW)

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
        correlation: float | None = None,
        channels: range | None = None,
    ):
        """
        Denoised value and uncertainty (in data units) of ``(C, Y, X)`` frames of one Stokes parameter, of noise
        ``sigma``; ``scale`` is the calibration factor of the aleatoric uncertainty (`Denoiser.calibration`), or in
        temporal mode the factors by bins of the head's variance (`Denoiser.calibration_bins`: ``head_edges``,
        ``factors``; files of formats 7-8: ``edges`` of the propagated variance).

        With ``mc_net`` (a network whose dropout may be switched on), the epistemic variance of ``mc_samples``
        Monte-Carlo dropout passes is added to the aleatoric one. In temporal mode, ``context`` holds the ``2k``
        neighbouring scans ``(2k C, Y, X)``: the network predicts the frames from them alone, and that prediction
        ``p`` (variance ``v``) is combined with the frames themselves by their inverse variances:
        ``p + v / (v + n) (x - p)``, of variance ``v n / (v + n)``, where ``n`` (``frame_var``) is the frames' own
        noise variance in units of ``sigma``: 1 on the cube the denoiser was fitted on, ``(noise here / sigma)^2``
        on another cube. ``v`` is the noise the neighbours propagate into ``p`` (`_propagated_variance`, with the
        noise's spatial ``correlation``, drawn at ``n``: the neighbours share scan t's noise) plus the calibrated
        head's, except in the quiet channels (the bins' ``noise_channels`` and ``weak_channels``, of the Stokes
        parameter's ``channels`` that the frames hold: all by default), where the propagated noise is the error (times
        ``weak_factor`` where weak signal is: `_temporal_bins`);
        `None` (a temporal denoiser saved before version 0.2): the head's alone, as it was calibrated. Where no
        neighbour has data (a mask, or a border band wider than ``EDGE_PX`` (`_align`) in every aligned neighbour of
        a drifting series), the frames come back as they are, with their noise.
        """
        x = frames / sigma
        inp = x
        alone = None
        if context is not None:
            # A pixel missing in one neighbouring scan takes the mean of the others there (scan t's value where all
            # are missing), so that a hole in one scan does not spread to its neighbours.
            inp = context / sigma
            groups = inp.reshape(-1, *x.shape)
            # no neighbour has data here (a mask, or border bands wider than EDGE_PX in every aligned neighbour)
            alone = ~np.isfinite(groups).any(axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: the mean is NaN, filled below
                fill = np.nanmean(groups, axis=0)
            fill = np.where(np.isfinite(fill), fill, x)
            inp = np.where(np.isfinite(groups), groups, fill[None]).reshape(inp.shape)
        mean, log_var = self._run(inp, dev, tile_size, n_out, model, precision, compile)
        bins = scale if isinstance(scale, dict) else None  # temporal mode: the head's factors by bins
        if bins and (context is None or correlation is None):  # the bins scale the head only beside prop
            raise ValueError("temporal factors by bins need the neighbours and their correlation")
        # NaN where the mean is (a tuning without data): the head has one channel for all of them
        var = np.exp(log_var) * (1.0 if bins else scale**2) * (0 * mean + 1)
        if context is not None and correlation is not None:
            # drawn at the neighbours' noise, which is scan t's (frame_var in units of the training noise)
            prop = self._propagated_variance(
                inp,
                correlation,
                lambda a: self._run_mean(a, dev, tile_size, n_out, model, precision, compile),
                mean,
                frame_var,
            )
            on_prop = 1.0  # the factor on the propagated noise
            if bins:
                factors = np.asarray(bins["factors"], var.dtype)
                # the head's own variance; calibrated before format 9 (kept when saved): the propagated variance
                # at the training noise, as calibrated (to first order on a cube of other noise)
                key, edges = (var, bins["head_edges"]) if "head_edges" in bins else (prop / frame_var, bins["edges"])
                var = var * factors[np.digitize(np.nan_to_num(key), edges)] ** 2
                # quiet channels: the propagated noise is the error (format 10), scaled where weak signal is (format
                # 11); no head (NaN kept where the mean is)
                chans = np.arange(var.shape[0]) if channels is None else channels
                weak = np.isin(chans, bins.get("weak_channels", []))[:, None, None]
                quiet = np.isin(chans, bins.get("noise_channels", []))[:, None, None] | weak
                var = np.where(quiet, 0 * var, var)
                on_prop = np.where(weak, bins.get("weak_factor", 1.0), 1.0).astype(var.dtype)
            var = var + prop * on_prop
        if mc_net is not None:
            mc_net.mc_dropout(True)
            try:  # the draws' variance heads would go unused: the head-less view (about 60 % of the arithmetic)
                draws = [
                    self._run_mean(inp, dev, tile_size, n_out, mc_net, precision, compile) for _ in range(mc_samples)
                ]
            finally:
                mc_net.mc_dropout(False)
            var = var + np.stack(draws).var(axis=0)
        if context is not None:  # NaN where scan t is NaN: missing pixels stay missing
            gain = var / (var + frame_var)
            if alone.any():  # a prediction from copies of scan t is no independent estimate: scan t as it is
                gain = np.where(alone, 1.0, gain)
            mean, var = mean + gain * (x - mean), gain * frame_var + 0 * x
        return mean * sigma, np.sqrt(var) * sigma
