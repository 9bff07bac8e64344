"""
The one model cache of Enhance and `load_enhance_model`, which resolves ``weights=`` into a network through it.

Private to `sunpy_nn.enhance`, which re-exports `load_enhance_model` (and the cache's ``_MODELS`` and
``_MODEL_LOADS``, read by tests).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
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


def load_enhance_model(weights: str | Path | nn.Module | None, kind: str) -> tuple[EnhanceNet, ModelInfo]:
    """
    Resolve the ``weights`` argument of `enhance_map` into a network and its provenance.

    ``None`` means the registered model ``enhance_<kind>``. Registered models and weight files are cached in this
    process, so processing a sequence of maps loads them once (each dask worker process once).
    """
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
    if path is None:  # a network object (nothing to load), or no such file: load_weights passes it or says why
        return load_weights(weights, architecture=EnhanceNet)
    stat = path.stat()
    key = (str(weights), str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_weights(weights, architecture=EnhanceNet)
            _count_load()
            while len(_MODELS) > _MAX_MODELS:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(key)
        return _MODELS[key]
