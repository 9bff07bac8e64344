"""
`Denoiser.save` and `Denoiser.load`: the denoiser in the weight format of `sunpy_nn.data`, and files of format 1.

Each file is read once: the weight file (hashed and loaded from the same bytes) and its model card.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from pathlib import Path
from typing import TypeVar

import numpy as np

from sunpy_nn.data.registry import FORMAT as _WEIGHTS_FORMAT
from sunpy_nn.data.registry import _build, _load_state, load_blob, model_card, save_weights, weight_path
from sunpy_nn.nn import UNet
from sunpy_nn.utils import WeightsError, _check_real

log = logging.getLogger(__name__)

#: Marks the denoiser's settings in a weight file (`Denoiser.save`). Version 1 was a layout of its own, written before
#: issue 15 and still read; version 2 stores them as the ``extra`` of a `sunpy_nn.data` weight file.
FORMAT = "sunpy_nn-denoiser"
#: 11: temporal mode's channels of weak signal (their own factor on the propagated noise); 10: temporal mode's
#: noise-only channels (no head there); 9: temporal factors by bins of the head's variance; 8:
#: the bootstrap's draws and window; 7: temporal factors by bins of the propagated variance; 6: noise per tuning; 5:
#: align; 4: factors per tuning; 3: the spectral basis; older: without.
FORMAT_VERSION = 11
#: The bootstrap of files of format 7, which did not save it (`_FramesMixin._propagated_variance`): draws, window (px).
_FORMAT_7_BOOTSTRAP = (4, 5)

_D = TypeVar("_D", bound="_FilesMixin")  # the Denoiser


class _FilesMixin:
    """`Denoiser`'s files: the network and the settings that `Denoiser.load` restores."""

    model: UNet | None
    _bootstrap: tuple[int, int]  # (`_FramesMixin`)

    def _bootstrapped(self) -> bool:
        """Whether prediction measures the neighbours' noise by the bootstrap (temporal mode, not a file calibrated
        against noise injection or without the propagated noise)."""
        propagation = getattr(self, "_propagation", "bootstrap")
        return bool(self.temporal) and propagation == "bootstrap" and self.noise_correlation is not None

    def _settings(self) -> dict:
        """What `save` stores besides the network, as plain JSON values (they round-trip exactly)."""
        return json.loads(
            json.dumps(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "mode": self.mode,
                    "n_wavelengths": self.n_wavelengths,
                    "noise": self.noise,
                    "noise_methods": self.noise_methods,
                    "noise_per_tuning": self.noise_per_tuning,
                    "noise_tunings": self.noise_tunings,
                    "temporal": self.temporal,
                    "shuffle": self.shuffle,
                    "align": self.align,
                    "calibration": self.calibration,
                    "calibration_tunings": self.calibration_tunings,
                    "calibration_bins": self.calibration_bins,
                    # "injection": a temporal file before format 7 saved again, whose head was calibrated against it
                    "propagation": getattr(self, "_propagation", "bootstrap"),
                    # the draws and window the calibration was measured with, which prediction uses
                    "bootstrap": list(self._bootstrap),
                    "noise_correlation": self.noise_correlation,
                    "unit": self.unit,
                    "spectral_basis": {lab: b.tolist() for lab, b in self.spectral_basis.items()},
                    "spectral_eigenvalues": self.spectral_eigenvalues,
                    # wall-clock times would make two identical seeded trainings differ in SHA-256: in the card
                    "history": {k: v for k, v in self.history.items() if k != "epoch_time"},
                    "fit_settings": self.fit_settings,
                }
            )
        )

    def _save(self, path: str | Path) -> Path:
        """`save`."""
        if self.model is None:
            raise ValueError("Nothing to save: the Denoiser is not trained")
        settings = self._settings()
        card = {
            "kind": "Noise2Noise denoiser",
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mode": self.mode,
            "noise": settings["noise"],
            "noise_methods": settings["noise_methods"],
            "noise_tunings": settings["noise_tunings"] or None,  # relative to "noise", the median tuning's
            "temporal": self.temporal,
            "shuffle": self.shuffle,
            "align": self.align,
            "uncertainty_calibration": settings["calibration"],
            "uncertainty_calibration_per_tuning": settings["calibration_tunings"] or None,
            "uncertainty_calibration_bins": settings["calibration_bins"] or None,
            "noise_correlation_px": settings["noise_correlation"],
            # temporal mode's propagated noise: the bootstrap's draws and window (px) the calibration was measured with
            "propagation_bootstrap": settings["bootstrap"] if self._bootstrapped() else None,
            "unit": settings["unit"],
            # the basis itself is in the hashed file; its eigenvalues say how much signal each component holds
            "spectral_pca_eigenvalues": settings["spectral_eigenvalues"] or None,
            "training_recipe": settings["fit_settings"],
            "validation": {"val_loss_per_epoch": settings["history"]["val_loss"]},
            "epoch_time_s": list(self.history.get("epoch_time", [])),  # this machine's; not in the hashed file
        }
        path = save_weights(self.model, weight_path(path), card=card, extra=settings)
        # save_weights hashed the file for its model card: read the hash there rather than hash the file again
        self.source = {"file": path.name, "sha256": model_card(path)["sha256"]}
        return path

    @classmethod
    def _load(cls: type[_D], path: str | Path) -> _D:
        """`load`: the model card, the file's SHA-256 and its contents are each read once."""
        path = Path(path).expanduser()
        if not path.exists() and weight_path(path).exists():
            path = weight_path(path)
        if not path.exists():
            raise WeightsError(f"Denoiser file {path} does not exist")
        card_path = path.with_suffix(".json")
        card = {}
        if card_path.exists():
            try:
                card = json.loads(card_path.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise WeightsError(
                    f"The model card {card_path} of {path.name} is not valid JSON ({exc}): restore it, or save the "
                    "denoiser again"
                ) from exc
        raw = path.read_bytes()  # a few MB: hashed and loaded from memory, so the file is read once
        digest = hashlib.sha256(raw).hexdigest()
        if card.get("sha256") and card["sha256"] != digest:
            raise WeightsError(
                f"SHA-256 of {path} is {digest}, but its model card {card_path.name} says {card['sha256']}: the file "
                "is corrupt or was replaced. Restore it, or save the denoiser again."
            )
        blob = load_blob(io.BytesIO(raw), f"denoiser file {path}")
        kind = blob.get("format") if isinstance(blob, dict) else None
        # The registry's checks (data.registry): a wrong architecture, key or tensor shape is a WeightsError naming
        # the file. load_weights would read the card and the file once more, so its steps are taken here.
        if kind == _WEIGHTS_FORMAT:  # what save writes
            model = _build(blob.get("config") or card.get("architecture"), UNet, path)
            _load_state(model, blob["state_dict"], path)
            settings = blob.get("extra") or {}
            if settings.get("format") != FORMAT:
                raise WeightsError(
                    f"{path} holds a U-Net but no denoiser settings: it is not a Denoiser file (save one with "
                    "Denoiser.save)"
                )
            if int(settings.get("format_version", 0)) > FORMAT_VERSION:
                raise WeightsError(
                    f"{path} is a denoiser file of format {settings['format_version']}, written by a newer sunpy_nn; "
                    f"this one reads formats up to {FORMAT_VERSION}: upgrade sunpy_nn (pip install -U sunpy_nn)"
                )
        elif kind == FORMAT:  # format 1
            model = _build({"architecture": "UNet", **dict(blob["config"])}, UNet, path)
            _load_state(model, blob["state_dict"], path)
            settings = {
                "mode": blob["mode"],
                "n_wavelengths": blob["n_wavelengths"],
                "noise": blob["noise"],
                "noise_methods": blob.get("noise_methods", {}),
                "temporal": blob.get("temporal", 0),
                "shuffle": blob.get("shuffle", 1),
                "calibration": blob.get("calibration", {}),  # older files: not calibrated (factor 1)
                "history": json.loads(blob["history"]),
                "fit_settings": json.loads(blob["fit_settings"]),
            }
        else:
            raise WeightsError(
                f"{path} is a torch file but not a Denoiser file (nor a sunpy_nn weight file): save one with "
                "Denoiser.save"
            )
        history = settings["history"]
        if "epoch_time" not in history:  # in the card for files saved since the times left the hashed file
            times = list(card.get("epoch_time_s", []))
            # without the card: unknown (NaN), one per epoch, so that a warm start keeps the lists aligned
            history["epoch_time"] = times if times else [float("nan")] * len(history.get("train_loss", []))
        log.info("Loaded the denoiser %s (sha256 %s)", path, digest[:12])
        return cls._restore(model, settings, path, digest)

    @classmethod
    def _restore(cls: type[_D], model: UNet, settings: dict, path: Path, sha256: str) -> _D:
        """A trained denoiser from its network and the settings `save` stores."""
        config = model.config
        den = cls(
            settings["mode"],
            config["n_filters"],
            config["depth"],
            dropout=config["dropout"],
            padding=config["padding"],
            residual=config["residual"],  # format 1 files before the residual form: False, the U-Net's default
            temporal=int(settings.get("temporal", 0)),
            shuffle=int(settings.get("shuffle", 1)),
            # files before format 5 were trained on the scans as they were: their temporal neighbours stay so
            align=bool(settings.get("align", False)),
            noise_per_tuning=settings.get("noise_per_tuning"),
        )
        den.model = model.eval()
        den.noise, den.n_wavelengths = dict(settings["noise"]), settings["n_wavelengths"]
        den.noise_methods = dict(settings.get("noise_methods", {}))
        den.noise_tunings = dict(settings.get("noise_tunings") or {})  # files before format 6: one level
        den.calibration = dict(settings.get("calibration", {}))
        # files before format 4: one factor per Stokes parameter, at every tuning
        den.calibration_tunings = dict(settings.get("calibration_tunings") or {})
        den.calibration_bins = dict(settings.get("calibration_bins") or {})
        # files before format 7: their head was calibrated against the injected noise
        den._propagation = settings.get(
            "propagation", "injection" if int(settings.get("format_version", 1)) < 7 else "bootstrap"
        )
        version = int(settings.get("format_version", 1))
        den._bootstrap = _FORMAT_7_BOOTSTRAP if version < 8 else _bootstrap_setting(settings.get("bootstrap"), path)
        # Temporal denoisers saved before the propagated noise was measured were calibrated without it: None keeps
        # their uncertainty as it was calibrated (the variance head's alone).
        correlation = settings.get("noise_correlation")
        den.noise_correlation = dict(correlation) if correlation is not None else (None if den.temporal else {})
        # files before format 3 have no basis: their networks denoise the tunings themselves
        den.spectral_basis = {
            lab: np.asarray(b, np.float64) for lab, b in (settings.get("spectral_basis") or {}).items()
        }
        den.spectral_eigenvalues = dict(settings.get("spectral_eigenvalues") or {})
        den.spectral_pca = bool(den.spectral_basis)
        den.unit = settings.get("unit")  # None in files saved before the unit was kept: levels used as they are
        den.history, den.fit_settings = settings["history"], settings["fit_settings"]
        den.source = {"file": path.name, "sha256": sha256}
        _check_restored(den, path)
        return den


def _positive(value) -> bool:
    """Whether ``value`` is a finite number above 0 (`_check_real`'s test, as a predicate: problems are collected)."""
    try:
        _check_real("value", value, 0.0, math.inf, low_open=True)
    except ValueError:
        return False
    return True


def _check_restored(den, path) -> None:
    """
    A loaded denoiser's settings against its network and one another, so that a corrupt or edited file fails here,
    naming what does not fit, instead of deep inside prediction (or with a silently wrong result: a NaN noise level).
    """
    problems = []
    n_w = den.n_wavelengths
    if not (isinstance(n_w, int) and n_w >= 1):
        raise WeightsError(f"{path}: its number of wavelengths {n_w!r} is not a positive integer; the file is corrupt")
    n_in, channels = den._channels(n_w)
    got = (den.model.config["in_channels"], den.model.config["out_channels"])
    if got != (n_in, channels):
        problems.append(
            f"its network takes {got[0]} and gives {got[1]} channels, where mode={den.mode!r}, temporal={den.temporal} "
            f"and {n_w} wavelengths need {n_in} and {channels}"
        )
    bad = [k for k, v in den.noise.items() if not _positive(v)]
    bad += [f"{k} (calibration)" for k, v in den.calibration.items() if not _positive(v)]
    if bad:
        problems.append(f"the noise levels or calibration factors of Stokes {bad} are not finite positive numbers")
    for lab, basis in den.spectral_basis.items():
        if basis.shape != (n_w, n_w) or not np.isfinite(basis).all():
            problems.append(f"the spectral basis of Stokes {lab} is not a finite {n_w} x {n_w} matrix ({basis.shape})")
    for lab, b in den.calibration_bins.items():
        # bins of the head's variance or, calibrated before format 9 (kept when saved again), of the propagated variance
        edges, factors = b.get("head_edges", b.get("edges")), b.get("factors")
        known = {"head_edges", "edges", "factors", "noise_channels", "weak_channels", "weak_factor"}
        ok = ("head_edges" in b) != ("edges" in b) and set(b) <= known
        ok = ok and isinstance(edges, list) and isinstance(factors, list) and len(factors) == len(edges) + 1
        ok = ok and all(_positive(f) for f in factors) and bool(np.all(np.isfinite(edges)))
        if not ok or np.any(np.diff(edges) < 0):
            problems.append(
                f"the calibration bins of Stokes {lab} are not one set of increasing edges and one more factor"
            )
        for key, what in (("noise_channels", "noise-only"), ("weak_channels", "weak-signal")):  # formats 10, 11
            chans = b.get(key, [])
            if not isinstance(chans, list) or not all(type(c) is int and 0 <= c < n_w for c in chans):
                problems.append(f"the {what} channels of Stokes {lab} are not channel numbers below {n_w}: {chans!r}")
        if set(b.get("noise_channels", [])) & set(b.get("weak_channels", [])):
            problems.append(f"channels of Stokes {lab} are both noise-only and weak-signal ones")
        weak_factor = b.get("weak_factor", 1.0)
        if not (_positive(weak_factor) and weak_factor >= 1):
            problems.append(
                f"the weak-signal factor of Stokes {lab} is not a finite number of at least 1: {weak_factor!r}"
            )
    if problems:
        raise WeightsError(
            f"{path} does not fit together: {'; '.join(problems)}. The file is corrupt or was edited: save the "
            "denoiser again from a trained one, or train a new one"
        )


def _bootstrap_setting(value, path) -> tuple[int, int]:
    """A file's bootstrap (draws, window in px), checked: a corrupt one would fail deep inside prediction."""
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(type(v) is int for v in value)
    if not ok or value[0] < 2 or value[1] < 1:
        raise WeightsError(
            f"{path}: its bootstrap setting {value!r} is not [draws >= 2, window >= 1]; the file is corrupt: save the "
            "denoiser again, or train a new one"
        )
    return int(value[0]), int(value[1])
