"""
Import of the original Keras 2 HDF5 weight files of Enhance and the Noise2Noise denoiser.

Keras 2 ``save_weights`` files hold one group per layer, listed in the root attribute ``layer_names``; a
layer's arrays sit in ``<layer>/<layer>/<name>:0``. Convolution kernels are ``(kh, kw, in, out)`` and batch
normalisation has ``gamma``, ``beta``, ``moving_mean`` and ``moving_variance``. Keras convolutions, like
torch ones, are cross-correlations, so kernels only need their axes reordered to ``(out, in, kh, kw)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sunpy_nn.utils import WeightsError

__all__ = ["keras_to_state_dict", "load_keras_enhance", "load_keras_unet", "read_keras_hdf5"]


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("Reading Keras HDF5 weights needs h5py: pip install 'sunpy-nn[keras]'") from exc
    return h5py


def read_keras_hdf5(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """
    Read the weights of a Keras 2 HDF5 file, layer by layer.

    Parameters
    ----------
    path : str or `pathlib.Path`
        A file written by Keras ``model.save_weights`` or ``model.save``.

    Returns
    -------
    dict
        ``{layer_name: {weight_name: array}}`` for the layers that have weights, in the file's
        ``layer_names`` order; weight names lose their ``:0`` suffix (``"kernel"``, ``"bias"``, ``"gamma"``...).
        Arrays keep Keras' layout and dtype (kernels ``(kh, kw, in, out)``).

    Raises
    ------
    sunpy_nn.utils.WeightsError
        The file is missing or not HDF5, has no ``layer_names`` attribute (not a Keras 2 weight file), or lacks a
        layer that it lists (truncated).
    ImportError
        h5py is not installed (``pip install 'sunpy-nn[keras]'``).
    """
    h5py = _h5py()
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{path} is not a readable HDF5 file ({exc}); is it a Keras weight file?") from exc
    with f:
        root = f.get("model_weights", f)  # full-model saves nest the weights
        if "layer_names" not in root.attrs:
            raise WeightsError(f"{path} has no 'layer_names' attribute: not a Keras 2 weight file")
        layers: dict[str, dict[str, np.ndarray]] = {}
        for raw in root.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            if name not in root:
                raise WeightsError(
                    f"{path}: layer {name!r} is listed in 'layer_names' but absent; is the file truncated?"
                )
            group = root[name]
            arrays: dict[str, np.ndarray] = {}
            group.visititems(
                lambda key, obj, arrays=arrays: (
                    arrays.__setitem__(key.rsplit("/", 1)[-1].split(":")[0], obj[()])
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
            if arrays:
                layers[name] = arrays
    return layers


_BN_KEYS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def keras_to_state_dict(
    layers: dict[str, dict[str, np.ndarray]], mapping: dict[str, str], module: nn.Module, *, source: str = "file"
) -> dict[str, torch.Tensor]:
    """
    Convert Keras layer weights to a torch ``state_dict`` for ``module``.

    Parameters
    ----------
    layers : dict
        Output of `read_keras_hdf5`.
    mapping : dict
        ``{keras_layer_name: torch_submodule_name}`` for every Keras layer with weights. Convolutions map to
        `torch.nn.Conv2d`, batch normalisation to `torch.nn.BatchNorm2d`.
    module : `torch.nn.Module`
        The target network; shapes are checked against it.
    source : str
        Name of the file, for error messages.

    Returns
    -------
    dict
        A complete ``state_dict`` that ``module.load_state_dict(..., strict=True)`` accepts: `torch.Tensor` values
        in the dtypes of ``module``'s own, kernels reordered to ``(out, in, kh, kw)``.

    Raises
    ------
    sunpy_nn.utils.WeightsError
        A Keras layer with weights has no entry in ``mapping``, a mapped layer is missing, a layer lacks the arrays
        its torch counterpart needs, a mapped submodule is not a convolution or batch normalisation, or the
        shapes or keys do not fit ``module``; the message names the layer and ``source``.
    """
    submodules = dict(module.named_modules())
    target = module.state_dict()
    state: dict[str, torch.Tensor] = {}
    unmapped = sorted(set(layers) - set(mapping))
    if unmapped:
        raise WeightsError(
            f"{source}: Keras layers {unmapped} have weights but no counterpart in {type(module).__name__}"
        )
    for kname, tname in mapping.items():
        if kname not in layers:
            raise WeightsError(f"{source}: Keras layer {kname!r} is missing (the file has {sorted(layers)})")
        sub = submodules.get(tname)
        w = layers[kname]
        if isinstance(sub, nn.Conv2d):
            if "kernel" not in w:
                raise WeightsError(f"{source}: layer {kname!r} has no kernel but {tname} is a convolution")
            state[f"{tname}.weight"] = torch.from_numpy(np.ascontiguousarray(w["kernel"].transpose(3, 2, 0, 1)))
            if "bias" in w:
                state[f"{tname}.bias"] = torch.from_numpy(np.asarray(w["bias"]))
        elif isinstance(sub, nn.BatchNorm2d):
            for k, t in _BN_KEYS.items():
                if k not in w:
                    raise WeightsError(f"{source}: batch-normalisation layer {kname!r} lacks {k!r}")
                state[f"{tname}.{t}"] = torch.from_numpy(np.asarray(w[k]))
            state[f"{tname}.num_batches_tracked"] = torch.tensor(0)
        else:
            raise WeightsError(f"{source}: {tname!r} is not a Conv2d or BatchNorm2d of {type(module).__name__}")
    for key, value in state.items():
        if key not in target:
            raise WeightsError(f"{source}: unexpected key {key!r} for {type(module).__name__}")
        if tuple(value.shape) != tuple(target[key].shape):
            raise WeightsError(
                f"{source}: {key} has shape {tuple(value.shape)} in the file but {tuple(target[key].shape)} in "
                f"{type(module).__name__}; the file was made for another architecture"
            )
        state[key] = value.to(target[key].dtype)
    missing = sorted(set(target) - set(state))
    if missing:
        raise WeightsError(f"{source}: no weights for {missing}")
    return state


def _suffix(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


def load_keras_enhance(path: str | Path):
    """
    Build an `~sunpy_nn.nn.EnhanceNet` from an original Keras HDF5 Enhance weight file.

    Depth and width are read from the file (``n_filters`` from the first kernel, ``depth`` from the number of
    batch-normalisation layers, ``2 * depth + 1``). Keras names layers in creation order (``conv2d_1`` ...
    ``conv2d_14``, ``batch_normalization_1`` ...), which is the network's forward order.

    Parameters
    ----------
    path : str or `pathlib.Path`
        The Keras weight file (``network/intensity_weights.hdf5`` or ``network/blos_weights.hdf5`` of the Enhance
        release).

    Returns
    -------
    `~sunpy_nn.nn.EnhanceNet`
        The network in ``eval()`` mode: ``(N, 1, H, W)`` in gives ``(N, 1, 2H, 2W)`` out, in the paper's units
        (I/Ic, or kG).

    Raises
    ------
    sunpy_nn.utils.WeightsError
        The file cannot be read (`read_keras_hdf5`), or its layers do not form an Enhance network.
    ImportError
        h5py is not installed.

    References
    ----------
    Diaz Baso, C. J., & Asensio Ramos, A. 2018, "Enhancing SDO/HMI images using deep learning", A&A, 614, A5,
    doi:10.1051/0004-6361/201731344: the network and the weights released with it.
    """
    from sunpy_nn.nn import EnhanceNet

    layers = read_keras_hdf5(path)
    convs = sorted((k for k, v in layers.items() if "kernel" in v), key=_suffix)
    bns = sorted((k for k, v in layers.items() if "gamma" in v), key=_suffix)
    if not convs or len(bns) < 3 or len(bns) % 2 == 0:
        raise WeightsError(
            f"{path}: {len(convs)} convolutions and {len(bns)} batch normalisations do not form an Enhance network "
            "(expected 2*depth+4 convolutions and 2*depth+1 batch normalisations)"
        )
    n_filters = int(layers[convs[0]]["kernel"].shape[-1])
    net = EnhanceNet(depth=(len(bns) - 1) // 2, n_filters=n_filters)
    tconvs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    tbns = [n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != len(tconvs):
        raise WeightsError(
            f"{path}: {len(convs)} convolutions, but an Enhance network of depth {net.depth} has {len(tconvs)}"
        )
    mapping = dict(zip(convs, tconvs, strict=True)) | dict(zip(bns, tbns, strict=True))
    net.load_state_dict(keras_to_state_dict(layers, mapping, net, source=str(path)))
    return net.eval()


def load_keras_unet(path: str | Path, *, dropout: float = 0.0):
    """
    Build a `~sunpy_nn.nn.UNet` from an original Keras HDF5 file of the Noise2Noise denoiser.

    The released files (``keras_simulation_bayes_weights.hdf5``, ``keras_sst_bayes_weights.hdf5``) hold a U-Net
    of depth 2 with 32 filters (``conv2d_1`` ... ``conv2d_12`` and ``linear_output``) and, when present, the
    variance head (the nine following ``conv2d_N``). Depth and width are read from the file; the network uses
    zero "same" padding, as TensorFlow did, so that it reproduces the original outputs.

    Parameters
    ----------
    path : str or `pathlib.Path`
        The Keras weight file.
    dropout : float
        Monte-Carlo dropout rate of the rebuilt network (0.01 in the paper; it carries no weights).

    Returns
    -------
    `~sunpy_nn.nn.UNet`
        The network in ``eval()`` mode: ``(N, C, H, W)`` in (``H`` and ``W`` multiples of 4 at depth 2) gives the
        denoised ``(N, C_out, H, W)``, plus the log-variance channel with the variance head, in units of the
        continuum intensity as the original.

    Raises
    ------
    sunpy_nn.utils.WeightsError
        The file cannot be read (`read_keras_hdf5`), has no ``linear_output`` layer, or its convolutions do not
        form a U-Net with or without variance head.
    ImportError
        h5py is not installed.

    References
    ----------
    Diaz Baso, C. J., de la Cruz Rodriguez, J., & Danilovic, S. 2019, "Solar image denoising with convolutional
    neural networks", A&A, 629, A99, doi:10.1051/0004-6361/201936069: the networks of Tables B.1 and B.2 and the
    weights released with them.
    """
    from sunpy_nn.nn import UNet

    layers = read_keras_hdf5(path)
    convs = sorted((k for k, v in layers.items() if "kernel" in v and k != "linear_output"), key=_suffix)
    if "linear_output" not in layers or not convs:
        raise WeightsError(f"{path}: no 'linear_output' layer: not a Noise2Noise denoiser file")
    first = layers[convs[0]]["kernel"]
    n_filters, in_channels = int(first.shape[-1]), int(first.shape[2])
    out_channels = int(layers["linear_output"]["kernel"].shape[-1])
    n_main = sum(1 for k in convs if layers[k]["kernel"].shape[0] == 2)  # one 2x2 up-convolution per level
    variance = len(convs) - (5 * n_main + 2) == 9
    if len(convs) - (5 * n_main + 2) not in (0, 9):
        raise WeightsError(f"{path}: {len(convs)} convolutions do not form a U-Net (with or without variance head)")
    net = UNet(in_channels, out_channels, n_filters, n_main, padding="zeros", variance_head=variance, dropout=dropout)
    main, head = net.conv_names()
    mapping = dict(zip(convs[: len(main) - 1], main[:-1], strict=True)) | {"linear_output": "out"}
    mapping |= dict(zip(convs[len(main) - 1 :], head, strict=True))
    net.load_state_dict(keras_to_state_dict(layers, mapping, net, source=str(path)))
    return net.eval()
