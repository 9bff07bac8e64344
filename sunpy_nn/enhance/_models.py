"""
The one model cache of Enhance and `load_enhance_model`, which resolves ``weights=`` into a network through it.

Private to `sunpy_nn.enhance`, which re-exports `load_enhance_model` (and the cache's ``_MODELS`` and
``_MODEL_LOADS``, read by tests).
"""

from __future__ import annotations

import copy
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from sunpy_nn.data.registry import ModelInfo, available_models, load_weights
from sunpy_nn.nn import EnhanceNet
from sunpy_nn.utils import WeightsError

# -------------------------------------------------------------------------------------------------------- weights
# The one model cache, per process: a registered model or a weight file is loaded once, however many maps this
# process enhances (a dask worker keeps its own). Keyed by the file and its modification time and size, so that a
# rewritten file is loaded again; at most _MAX_MODELS networks, the least recently used dropped first.
_MODELS: OrderedDict = OrderedDict()
_MAX_MODELS = 8
_MODELS_LOCK = threading.Lock()  # the "threads" scheduler's tasks share this process and its cache


def _count_load() -> None:
    """Count a network loaded from a file by this process, as ``sunpy_nn.enhance._MODEL_LOADS``."""
    # The count stays a plain attribute of the package, where tests read and reset it (a worker's count shows the
    # cache working); a property on the package would make the module unpicklable for cloudpickle.
    package = sys.modules[__package__]
    package._MODEL_LOADS = getattr(package, "_MODEL_LOADS", 0) + 1


def _weights_file(weights: str | Path) -> Path | None:
    """The file behind a registered name or a path, or None where there is none (load_weights says why)."""
    if isinstance(weights, str) and not Path(weights).suffix:
        from sunpy_nn.data.registry import _find

        return _find(weights)
    path = Path(weights).expanduser()  # as load_weights reads it: "~/w.pt" is cached too
    return path if path.is_file() else None


@dataclass(frozen=True)
class _Weights:
    """
    ``weights=`` resolved for one kind, once: what `load_weights` reads, and the model cache's key.

    ``source`` is the network object, or the registered name or path as given; ``path`` the weight file behind a
    name or path (None for a network, or where there is no such file: `load_weights` then says why); ``key`` the
    file's cache key, with its modification time and size.
    """

    source: str | Path | nn.Module
    path: Path | None = None
    key: tuple | None = None


def _resolve(weights: str | Path | nn.Module | None, kind: str) -> _Weights:
    """Find the weights of ``kind`` (registry look-up and ``stat``): once per map, or once per batch."""
    if weights is None:
        name = f"enhance_{kind}"
        if name not in available_models():
            raise WeightsError(
                f"This version of sunpy_nn ships no trained Enhance weights for kind={kind!r} (registered models: "
                f"{available_models() or 'none'}). Pass weights= a .pt file saved by sunpy_nn.data.save_weights, "
                "the original Keras .h5 file of the Enhance release, or an EnhanceNet; or put enhance_"
                f"{kind}.pt and its .json model card in the folder named by $SUNPY_NN_WEIGHTS_DIR."
            )
        weights = name
    path = None if isinstance(weights, nn.Module) else _weights_file(weights)
    if path is None:
        return _Weights(weights)
    stat = path.stat()
    return _Weights(weights, path, (str(weights), str(path.resolve()), stat.st_mtime_ns, stat.st_size))


def _load(weights: _Weights) -> tuple[EnhanceNet, ModelInfo]:
    """The network and its provenance, from the model cache (loaded into it when it is not there)."""
    if weights.key is None:  # a network object (nothing to load), or no such file: load_weights passes it or says why
        return load_weights(weights.source, architecture=EnhanceNet)
    with _MODELS_LOCK:
        if weights.key not in _MODELS:
            # The file found when resolving: the same file (and ModelInfo) load_weights finds for the name or path.
            _MODELS[weights.key] = load_weights(weights.path, architecture=EnhanceNet)
            _count_load()
            while len(_MODELS) > _MAX_MODELS:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(weights.key)
        return _MODELS[weights.key]


def load_enhance_model(weights: str | Path | nn.Module | None, kind: str) -> tuple[EnhanceNet, ModelInfo]:
    """
    Resolve the ``weights`` argument of `enhance_map` into a network and its provenance.

    ``None`` means the registered model ``enhance_<kind>``. Registered models and weight files are cached in this
    process, so processing a sequence of maps loads them once (each dask worker process once).

    Parameters
    ----------
    weights : str, path, `~sunpy_nn.nn.EnhanceNet` or None
        A registered model name, a weight file (``.pt`` or the original Keras ``.h5``), or a network.
    kind : {"intensity", "blos"}
        The data kind, which names the registered model when ``weights`` is `None`.

    Returns
    -------
    model : `~sunpy_nn.nn.EnhanceNet`
        The network, in ``eval()`` mode: a copy of the cached one (``weights`` a network: that network, or a copy
        in ``eval()`` mode of one in training mode).
    info : `~sunpy_nn.data.ModelInfo`
        Its name, file and SHA-256, for provenance.

    Raises
    ------
    sunpy_nn.utils.WeightsError
        No registered model ``enhance_<kind>`` (``weights`` `None`), or a name or file that is missing, corrupt,
        fails its SHA-256 check or does not fit `~sunpy_nn.nn.EnhanceNet` (from `~sunpy_nn.data.load_weights`).
    """
    model, info = _load(_resolve(weights, kind))
    # the cache's network is shared by every later map: altering it would change their results under the file's SHA
    return (model if isinstance(weights, nn.Module) else copy.deepcopy(model)), info


def load_training_checkpoint(path: str | Path) -> tuple[EnhanceNet, dict]:
    """
    The best network of a ``checkpoint.pt`` of `sunpy_nn.training.train_enhance` (the architecture its recipe
    records; ``depth=5, n_filters=64`` for checkpoints written before checkpoints kept their recipe).

    Parameters
    ----------
    path : str or path
        The checkpoint, whose ``best_state`` is the state of the epoch with the lowest validation loss so far.

    Returns
    -------
    model : `~sunpy_nn.nn.EnhanceNet`
        The network, in ``eval()`` mode.
    info : dict
        ``best_epoch``, ``epochs_done`` and ``val_loss`` (per epoch) of its training history.

    Raises
    ------
    sunpy_nn.utils.WeightsError
        The file is missing or unreadable, is not such a checkpoint, or its state does not fit its architecture.
    """
    from sunpy_nn.data.registry import _build, _load_state, load_blob

    blob = load_blob(Path(path).expanduser(), f"the checkpoint {path}")
    if not (isinstance(blob, dict) and isinstance(blob.get("best_state"), dict)):
        raise WeightsError(f"{path} is not a training checkpoint of sunpy_nn.training (it has no best_state)")
    # the architecture its recipe records (checkpoints before sunpy_nn 0.2: the paper's network)
    config = (blob.get("recipe") or {}).get("architecture") or {"depth": 5, "n_filters": 64}
    net = _build(config, EnhanceNet, Path(path))
    _load_state(net, blob["best_state"], Path(path))  # a WeightsError naming the keys that do not fit
    history = blob.get("history", {})
    epochs = len(history.get("train_loss", []))
    return net.eval(), {
        "best_epoch": history.get("best_epoch"),
        "epochs_done": epochs,
        "val_loss": history.get("val_loss"),
    }
