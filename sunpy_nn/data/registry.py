"""
Registry of trained weights: files, SHA-256 checks and model cards.

Each model is a weight file ``<name>.pt`` with a JSON model card ``<name>.json`` next to it. The card records
the file's SHA-256, the architecture, the training data and recipe, and validation metrics. Registered models
are looked up first in the folder named by the ``SUNPY_NN_WEIGHTS_DIR`` environment variable (offline or HPC
installs can drop newer weights there), then in the package's own ``sunpy_nn/data/weights`` folder. Nothing is
ever downloaded.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sunpy_nn.utils import WeightsError, sha256sum

__all__ = [
    "WEIGHTS_DIR",
    "ModelInfo",
    "available_models",
    "load_weights",
    "model_card",
    "save_weights",
    "weight_path",
]

log = logging.getLogger(__name__)

#: Folder of the weights that ship with the package.
WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = "sunpy_nn-weights"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelInfo:
    """
    Where a loaded network came from: recorded in the provenance of every result.

    Returned by `load_weights`; each parameter is kept as the attribute of the same name (the object is immutable).

    Parameters
    ----------
    name : str
        Model name: the model card's ``name``, the file's, or the file stem (``"keras:<file>"`` for a Keras file,
        ``"user <class>"`` for a network object passed in).
    path : `pathlib.Path` or None
        The weight file (`None` for a network object passed in).
    sha256 : str or None
        SHA-256 hex digest of the weight file (`None` for a network object).
    card : dict
        The model card (training data, recipe, validation metrics); empty when the file has none.
    extra : dict
        Settings stored in the weight file besides the architecture (`save_weights`'s ``extra``), e.g. a
        `~sunpy_nn.Denoiser`'s noise levels; empty for files without them.
    """

    name: str
    path: Path | None
    sha256: str | None
    card: dict = field(default_factory=dict, repr=False)
    # Documented in the class docstring only: for a field without a class-level default, autodoc hands numpydoc
    # `dataclasses.MISSING`, whose missing docstring fails validation (GL08) whatever a ``#:`` comment says.
    extra: dict = field(default_factory=dict, repr=False)


def _search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SUNPY_NN_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["SUNPY_NN_WEIGHTS_DIR"]).expanduser())
    dirs.append(WEIGHTS_DIR)
    return dirs


def _versioned(stem: str) -> tuple[str, int] | None:
    base, sep, version = stem.rpartition("_v")
    return (base, int(version)) if sep and version.isdigit() else None


def available_models() -> list[str]:
    """
    Names of the registered models (those with a model card and a weight file).

    A model saved as ``<name>_v<N>`` is also available as ``<name>``, which means its newest version: for
    example ``"enhance_intensity"`` is ``"enhance_intensity_v2"`` while ``"enhance_intensity_v1"`` stays loadable
    by that name. The folder named by ``SUNPY_NN_WEIGHTS_DIR`` is searched as well as the package's own.

    Returns
    -------
    list of str
        The names, sorted (versioned names and their unversioned aliases alike).

    Examples
    --------
    >>> from sunpy_nn.data import available_models
    >>> isinstance(available_models(), list)
    True
    """
    names = set()
    for d in _search_dirs():
        names.update(p.stem for p in d.glob("*.json") if p.with_suffix(".pt").exists())
    names.update(v[0] for v in map(_versioned, list(names)) if v)
    return sorted(names)


def _find(name: str) -> Path | None:
    """The weight file of a registered name; an unversioned name is the newest ``<name>_v<N>`` of the first
    folder that has any (a file of exactly that name in ``SUNPY_NN_WEIGHTS_DIR`` wins over the package's)."""
    for d in _search_dirs():
        if (d / f"{name}.pt").exists() and (d / f"{name}.json").exists():
            return d / f"{name}.pt"
        versions = [
            (v[1], p)
            for p in d.glob(f"{name}_v*.pt")
            if (v := _versioned(p.stem)) and v[0] == name and p.with_suffix(".json").exists()
        ]
        if versions:
            return max(versions)[1]
    return None


def model_card(name_or_path: str | Path) -> dict:
    """
    Return the model card of a registered model name or of a weight file with a ``.json`` beside it.

    Parameters
    ----------
    name_or_path : str or `pathlib.Path`
        A registered model name (see `available_models`; an unversioned name means its newest version) or the path
        of a ``.pt`` weight file.

    Returns
    -------
    dict
        The model card: name, file, SHA-256, architecture, training data and recipe, validation metrics.

    Raises
    ------
    sunpy_nn.utils.WeightsError
        There is no such registered model, or no ``.json`` model card beside the file (the message lists the
        registered models), or the card is not a JSON object.

    Examples
    --------
    >>> from sunpy_nn.data import available_models, model_card
    >>> all(model_card(name)["sha256"] for name in available_models())
    True
    """
    path = _find(str(name_or_path)) if isinstance(name_or_path, str) and not str(name_or_path).endswith(".pt") else None
    path = path or Path(name_or_path)
    card_path = Path(path).with_suffix(".json")
    if not card_path.exists():
        raise WeightsError(f"No model card {card_path}; registered models: {available_models()}")
    return _read_card(card_path)


def weight_path(path: str | Path) -> Path:
    """
    The weight file of ``path``: ``path`` itself when its name ends in ``.pt``, else ``path`` with ``.pt`` added.

    A dot inside the name is kept: ``"model.v2"`` is ``model.v2.pt`` (not ``model.pt``), and its model card is
    ``model.v2.json``.

    Parameters
    ----------
    path : str or `pathlib.Path`
        A weight file name, with or without ``.pt``; ``~`` is expanded.

    Returns
    -------
    `pathlib.Path`
        The path of the weight file, ending in ``.pt``.

    Examples
    --------
    >>> from sunpy_nn.data.registry import weight_path
    >>> weight_path("crisp.v2").name, weight_path("crisp.pt").name
    ('crisp.v2.pt', 'crisp.pt')
    """
    path = Path(path).expanduser()
    return path if path.suffix == ".pt" else path.with_name(path.name + ".pt")


def load_blob(source, what: str, error: type[Exception] = WeightsError, fix: str = "", map_location="cpu"):
    """
    ``torch.load`` of ``source`` (a path or a file object) with ``weights_only=True`` (plain values and tensors: no
    code runs), or an ``error`` that names ``what`` (e.g. "weight file ``path``"), torch's first message line (its
    unpickling messages run over many lines) and the ``fix``: the one reading of the package's torch files.
    """
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for missing, truncated or foreign files
        first = (str(exc).splitlines() or [""])[0]
        raise error(f"Could not read {what}: {type(exc).__name__}: {first}{fix}") from exc


def _read_pt(path: Path) -> dict:
    blob = load_blob(
        path,
        f"weight file {path}",
        fix=". The file is corrupt or not a torch file; re-create it with sunpy_nn.data.save_weights, or pass the "
        "original Keras .h5 file.",
    )
    if isinstance(blob, dict) and blob.get("format") == FORMAT:
        return blob
    if isinstance(blob, dict) and blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return {"format": FORMAT, "config": None, "state_dict": blob}  # a bare state_dict
    raise WeightsError(f"{path} is a torch file but neither a sunpy_nn weight file nor a state_dict")


def _read_card(card_path: Path) -> dict:
    """A model card (JSON object), or `WeightsError` naming the card when it is not one."""
    try:
        with open(card_path) as f:
            card = json.load(f)
    except (OSError, ValueError) as exc:  # unreadable, or not JSON (json.JSONDecodeError, UnicodeDecodeError)
        raise WeightsError(
            f"Could not read the model card {card_path}: {exc}. Restore it, or re-create the weights and card with "
            "sunpy_nn.data.save_weights"
        ) from exc
    if not isinstance(card, dict):
        raise WeightsError(f"The model card {card_path} is not a JSON object but a {type(card).__name__}: corrupt")
    return card


def _build(config: dict | None, default: type[nn.Module], path: Path) -> nn.Module:
    from sunpy_nn import nn as snn

    if not config:
        return default()
    config = dict(config)
    arch = config.pop("architecture", default.__name__)
    if arch != default.__name__:
        raise WeightsError(f"{path} holds a {arch} network, but a {default.__name__} is needed here")
    cls = getattr(snn, arch)
    try:
        return cls(**config)
    except TypeError as exc:
        raise WeightsError(f"{path}: architecture settings {config} do not fit {arch}: {exc}") from exc


def _load_state(model: nn.Module, state: dict, path: Path) -> None:
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    bad = sorted(k for k in set(state) & set(target) if tuple(state[k].shape) != tuple(target[k].shape))
    if missing or unexpected or bad:
        raise WeightsError(
            f"Weight file {path} does not match {type(model).__name__}({getattr(model, 'config', '')}): "
            f"missing keys {missing}, unexpected keys {unexpected}, wrong shapes {bad}. "
            "Was it trained for another architecture?"
        )
    model.load_state_dict(state, strict=True)


def load_weights(weights: str | Path | nn.Module, *, architecture: type[nn.Module], verify: bool = True):
    """
    Load a network from a registered name, a weight file, or pass a module through.

    Parameters
    ----------
    weights : str, `pathlib.Path` or `torch.nn.Module`
        A registered model name (see `available_models`), a ``.pt`` file written by `save_weights` (or a bare
        ``state_dict``), a Keras ``.h5``/``.hdf5`` file of the original release, or a network object.
    architecture : type
        The network class expected here, e.g. `~sunpy_nn.nn.EnhanceNet` or `~sunpy_nn.nn.UNet`; the file's
        ``config`` gives its constructor arguments.
    verify : bool
        Check the file's SHA-256 against its model card (registered models always are checked).

    Returns
    -------
    model : `torch.nn.Module`
        The network, in ``eval()`` mode (a network object in training mode comes back as a copy in ``eval()``
        mode; the object itself is left as it was).
    info : `ModelInfo`
        Name, path, SHA-256 and model card, for provenance, and the settings stored with the weights (``extra``).

    Raises
    ------
    sunpy_nn.utils.WeightsError
        The file or its model card is missing (a registered model's card, or its SHA-256), corrupt or not a weight
        file or JSON object, fails its SHA-256 check, or does not fit the
        architecture (the message lists the missing and unexpected keys); a network object is not an
        ``architecture``; a Keras file is given for another architecture than `~sunpy_nn.nn.EnhanceNet`.

    Examples
    --------
    >>> from sunpy_nn.data import load_weights
    >>> from sunpy_nn.nn import EnhanceNet
    >>> model, info = load_weights(EnhanceNet(depth=1, n_filters=4), architecture=EnhanceNet)
    >>> info.name, model.training
    ('user EnhanceNet', False)
    """
    if isinstance(weights, nn.Module):
        if not isinstance(weights, architecture):
            raise WeightsError(f"weights is a {type(weights).__name__}, but a {architecture.__name__} is needed")
        # a network in training mode is copied, not switched: the caller's object stays as it was
        model = copy.deepcopy(weights).eval() if weights.training else weights
        return model, ModelInfo(name=f"user {type(weights).__name__}", path=None, sha256=None)

    registered = _find(str(weights)) if isinstance(weights, str) and not Path(weights).suffix else None
    path = registered or Path(weights).expanduser()
    if not path.exists():
        raise WeightsError(f"Weight file {path} does not exist; registered models: {available_models() or 'none'}")
    digest = sha256sum(path)
    card_path = path.with_suffix(".json")
    card = {}
    if card_path.exists() and path.suffix == ".pt":
        card = _read_card(card_path)
        if registered and not card.get("sha256"):  # the check of registered models cannot be switched off
            raise WeightsError(
                f"{card_path}, the model card of the registered model {weights!r}, has no sha256 to check the weights "
                "against: restore the card (or reinstall sunpy_nn, for the weights it ships)"
            )
        if (verify or registered) and card.get("sha256") and card["sha256"] != digest:
            raise WeightsError(
                f"SHA-256 of {path} is {digest}, but its model card {card_path.name} says {card['sha256']}: the file "
                "is corrupt or was replaced. Restore the file (or reinstall sunpy_nn, for the weights it ships)."
            )

    if path.suffix.lower() in {".h5", ".hdf5", ".keras"}:
        from sunpy_nn.io.keras import load_keras_enhance

        if architecture.__name__ != "EnhanceNet":
            raise WeightsError(f"Keras import for {architecture.__name__} is not available from load_weights")
        model = load_keras_enhance(path)
        name, extra = f"keras:{path.name}", {}
    else:
        blob = _read_pt(path)
        config = blob.get("config") or card.get("architecture")
        if not isinstance(blob.get("state_dict"), dict) or not (config is None or isinstance(config, dict)):
            raise WeightsError(
                f"{path} is a sunpy_nn weight file without a state_dict or with an architecture that is not a dict: "
                "the file is corrupt; re-create it with sunpy_nn.data.save_weights"
            )
        model = _build(config, architecture, path)
        _load_state(model, blob["state_dict"], path)
        name = card.get("name") or blob.get("name") or path.stem
        extra = blob.get("extra") or {}
    log.info("Loaded %s from %s (sha256 %s)", name, path, digest[:12])
    return model.eval(), ModelInfo(name=name, path=path, sha256=digest, card=card, extra=dict(extra))


def save_weights(
    model: nn.Module, path: str | Path, *, name: str | None = None, card: dict | None = None, extra: dict | None = None
) -> Path:
    """
    Save a network's weights with its architecture and write a model card with the SHA-256 next to it.

    The weight file is a `torch.save` dict: ``format`` (``"sunpy_nn-weights"``), ``format_version``, ``name``,
    ``config`` (the architecture: the network's ``config``, whose ``architecture`` entry names its class in
    `sunpy_nn.nn`), ``state_dict`` and, when given, ``extra``. It holds tensors and plain Python values only, so
    that `torch.load` reads it with ``weights_only=True``.

    Parameters
    ----------
    model : `torch.nn.Module`
        A sunpy_nn network (it must have a ``config`` property).
    path : str or `pathlib.Path`
        Destination ``.pt`` file (``.pt`` is added to a name that does not end in it, see `weight_path`); the model
        card goes to the same name with ``.json``.
    name : str, optional
        Model name recorded in the file and the card (default: the file stem).
    card : dict, optional
        Further model-card entries: training data, recipe, validation metrics.
    extra : dict, optional
        Settings that belong to the weights besides the architecture (plain Python values: dicts, lists, strings,
        numbers, `None`), stored in the weight file, so covered by its SHA-256, and returned by `load_weights` as
        `ModelInfo.extra`.

    Returns
    -------
    `pathlib.Path`
        The weight file.

    Raises
    ------
    AttributeError
        ``model`` has no ``config`` (it is not one of the networks of `sunpy_nn.nn`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sunpy_nn.data import load_weights, save_weights
    >>> from sunpy_nn.nn import EnhanceNet
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save_weights(EnhanceNet(depth=1, n_filters=4), Path(d) / "tiny", card={"note": "example"})
    ...     model, info = load_weights(path, architecture=EnhanceNet)
    >>> path.name, info.card["note"], model.depth
    ('tiny.pt', 'example', 1)
    """
    from sunpy_nn import __version__

    path = weight_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = name or path.stem
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": model.config,
        "state_dict": state,
    }
    if extra is not None:
        blob["extra"] = extra
    torch.save(blob, path)
    full = {
        "name": name,
        "file": path.name,
        "architecture": model.config,
        "n_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "sunpy_nn_version": __version__,
        **(card or {}),
        "sha256": sha256sum(path),  # last: a card passed in can never carry a stale hash
    }
    with open(path.with_suffix(".json"), "w") as f:
        json.dump(full, f, indent=2, sort_keys=False)
        f.write("\n")
    return path
