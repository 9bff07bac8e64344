"""Tiled, batched inference of 2-D image-to-image networks, exact to whole-image inference."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import weakref
import zlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sunpy_nn.nn.device import PRECISIONS, apply_thread_policy, resolve_device
from sunpy_nn.nn.heap import keep_freed_memory
from sunpy_nn.nn.optimize import prepare_model
from sunpy_nn.nn.prepared import _draws_at_random, _exact_float32, _indexed, _is_on, _on_device

__all__ = [
    "default_batch_size",
    "default_tile_size",
    "keep_freed_memory",
    "optimized_tile_size",
    "resolve_device",
    "run_tiled",
    "tile_windows",
]

log = logging.getLogger(__name__)


def default_batch_size(device: torch.device) -> int:
    """
    Tiles per forward pass: 1 on the CPU (measured fastest: small working sets stay in cache), 4 on a GPU.

    Parameters
    ----------
    device : `torch.device`
        Where the network runs.

    Returns
    -------
    int
        4 on CUDA, 1 on any other device.

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import default_batch_size
    >>> default_batch_size(torch.device("cpu")), default_batch_size(torch.device("cuda"))
    (1, 4)
    """
    return 4 if device.type == "cuda" else 1


def default_tile_size(device: torch.device, n_filters: int = 64, scale: int = 1, batch_size: int | None = None) -> int:
    """
    A tile edge (input pixels, halo included) that keeps the activations of one batch bounded.

    One float32 feature map of ``n_filters`` channels at the output resolution, for the whole batch, is kept to
    64 MiB on the CPU (256-pixel tiles for Enhance: measured 1.5x faster than 512-pixel tiles in batches of 4,
    with a tenth of the memory) and 1 GiB on a GPU.

    Parameters
    ----------
    device : `torch.device`
        Where the network runs.
    n_filters : int
        The network's ``n_filters``, the channels of its full-resolution feature maps (64 for Enhance, 32 for the
        denoiser's U-Net).
    scale : int
        Output pixels per input pixel along each axis (2 for Enhance).
    batch_size : int, optional
        Tiles per forward pass (default: `default_batch_size`).

    Returns
    -------
    int
        Tile edge in input pixels, a multiple of 8 in ``[64, 2048]``.

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import default_tile_size
    >>> default_tile_size(torch.device("cpu"), n_filters=64, scale=2)
    256
    """
    batch_size = batch_size or default_batch_size(device)
    budget = (1 << 30) if device.type == "cuda" else (64 << 20)
    edge = math.sqrt(budget / (4 * n_filters * scale * scale * batch_size))
    return int(max(64, min(2048, edge)) // 8 * 8)


def optimized_tile_size(
    device: torch.device, n_filters: int = 64, scale: int = 1, batch_size: int | None = None
) -> int:
    """
    Default tile edge of the optimised path (``run_tiled(precision=...)``).

    On the CPU, one float32 feature map of ``n_filters`` channels at the *input* resolution is kept to 96 MiB
    (624 px for Enhance, whose optimised network runs its upsampling stage in strips of rows, 880 px for the
    denoiser's U-Net): larger tiles than `default_tile_size`, so that halos cost less (Enhance on a 4096 px disk:
    9 % extra pixels instead of 27 %). On a GPU, as `default_tile_size`.

    Parameters
    ----------
    device : `torch.device`
        Where the network runs.
    n_filters : int
        The network's ``n_filters``, the channels of its full-resolution feature maps (64 for Enhance, 32 for the
        denoiser's U-Net).
    scale : int
        Output pixels per input pixel along each axis (2 for Enhance); used on a GPU only (accepted on the CPU for
        symmetry).
    batch_size : int, optional
        Tiles per forward pass (default: `default_batch_size`).

    Returns
    -------
    int
        Tile edge in input pixels, a multiple of 8 in ``[64, 2048]``.

    Examples
    --------
    >>> import torch
    >>> from sunpy_nn.nn import optimized_tile_size
    >>> optimized_tile_size(torch.device("cpu"), n_filters=64, scale=2)
    624
    """
    if device.type == "cuda":
        return default_tile_size(device, n_filters, scale, batch_size)
    batch_size = batch_size or default_batch_size(device)
    edge = math.sqrt((96 << 20) / (4 * n_filters * batch_size))
    return int(max(64, min(2048, edge)) // 8 * 8)


def _tile_edge(
    model: nn.Module, dev: torch.device, scale: int, tile_size: int | None, batch_size: int, optimised: bool
) -> int:
    """`run_tiled`'s tile edge: ``tile_size``, else the default of its path (optimised or not)."""
    if tile_size is not None:
        return tile_size
    default = optimized_tile_size if optimised else default_tile_size
    return default(dev, getattr(model, "n_filters", 64), scale, batch_size)


#: Float32 feature maps of ``n_filters`` channels and a tile's size that a network holds at its peak while
#: `run_tiled` runs a tile (the optimised path; the plain one holds them at the output resolution), rounded up from
#: the peak RSS per running block over the process's baseline, a 2048 x 2048 image in memory and in 2 to 8 lazy blocks
#: of one torch thread each (``benchmarks/lazy_memory.py``): 4.0 to 4.4 maps for Enhance, 5.8 to 10.0 for the U-Net
#: with its variance head.
PEAK_MAPS = {"EnhanceNet": 5, "UNet": 10}


def _workspace_bytes(
    model: nn.Module,
    shape: tuple[int, int],
    *,
    scale: int = 1,
    tile_size: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    optimised: bool = True,
) -> int:
    """
    An estimate of the host memory `run_tiled` takes on an image of ``shape`` (input px) with these settings: the
    `PEAK_MAPS` of its network (the most of them for others) at the size of a tile (or of the image, when smaller);
    0 on a GPU, whose own memory holds the maps. Measured on the optimised path; the plain path's maps at the output
    resolution are an assumption.
    """
    dev = torch.device(resolve_device(None) if device is None else device)  # not checked here: a GPU need not be here
    if dev.type != "cpu":
        return 0
    batch_size = max(1, int(batch_size or default_batch_size(dev)))
    tile = int(_tile_edge(model, dev, scale, tile_size, batch_size, optimised))
    pixels = min(tile, shape[0]) * min(tile, shape[1]) * (1 if optimised else scale * scale)
    maps = PEAK_MAPS.get(type(model).__name__, max(PEAK_MAPS.values()))
    return maps * 4 * getattr(model, "n_filters", 64) * batch_size * pixels


def smallest_tile(halo: int, align: int = 1) -> int:
    """
    The smallest tile edge `run_tiled` uses: a core as wide as both halos, so that at most 4x the pixels are computed.

    A tile of ``2 * halo + align`` pixels is valid but has a one-pixel core: a 4096 px disk would take 16 million
    tiles. A ``tile_size`` below this one is raised to it (the result does not depend on the tile size).

    Examples
    --------
    >>> from sunpy_nn.nn.runner import smallest_tile
    >>> smallest_tile(13), smallest_tile(30, align=4)
    (53, 124)
    """
    # at least a core of `align` px besides the `align - 1` px that rounding window starts down takes from it
    return -(-max(4 * int(halo) + align, 2 * int(halo) + 2 * align - 1) // align) * align


def _balanced_window(size: int, window: int, halo: int, align: int) -> int:
    """The smallest window that tiles ``size`` in as many windows as ``window`` does: less overlap at the end."""
    if size <= window:
        return window
    core = (window - 2 * halo - (align - 1)) // align * align
    if core < 1:
        return window
    n = math.ceil(size / core)
    core = math.ceil(math.ceil(size / n) / align) * align
    return min(window, math.ceil((core + 2 * halo + align - 1) / align) * align)


def tile_windows(size: int, window: int, halo: int, align: int = 1) -> list[tuple[int, int, int]]:
    """
    Split one axis of ``size`` pixels into equal windows whose cores tile the axis exactly.

    Every window has length ``min(window, size)`` and lies inside ``[0, size)``. Each core lies at least ``halo``
    pixels inside its window, except on a side where the window touches the image border: there the network sees
    the same border as in whole-image inference. With ``halo`` at least the network's receptive-field radius, the
    cores are therefore identical to whole-image inference. Window starts are multiples of ``align`` (needed for
    networks that pool).

    Parameters
    ----------
    size : int
        Length of the axis, in pixels.
    window : int
        Window length in pixels, halo included.
    halo : int
        Pixels each core keeps from its window's edges (except at the image border).
    align : int
        Window starts, and ``window`` and ``size`` when the axis needs more than one window, are multiples of this.

    Returns
    -------
    list of tuple of (int, int, int)
        ``(window_start, core_start, core_stop)`` per window, in pixels, in order along the axis; the cores
        ``[core_start, core_stop)`` cover ``[0, size)`` without overlap.

    Raises
    ------
    ValueError
        ``window`` or ``size`` is not a multiple of ``align``, or the window is too small to hold a core inside
        a halo of ``halo`` pixels on each side (only where ``size > window``).

    Examples
    --------
    >>> from sunpy_nn.nn import tile_windows
    >>> tile_windows(100, 40, 5)
    [(0, 0, 30), (25, 30, 60), (55, 60, 90), (60, 90, 100)]
    """
    if size <= window:
        return [(0, 0, size)]
    if window % align:
        raise ValueError(f"window={window} must be a multiple of align={align}")
    if size % align:
        raise ValueError(f"size={size} must be a multiple of align={align}; pad the image first")
    # Rounding window starts down to `align` can cost up to align-1 pixels of halo: take them from the core.
    core = (window - 2 * halo - (align - 1)) // align * align
    if core < 1:
        raise ValueError(f"tile of {window} px is too small for a halo of {halo} px on each side")
    out = []
    start = 0
    while start < size:
        stop = min(start + core, size)
        w0 = (start - halo) // align * align
        w0 = min(max(w0, 0), size - window)
        # The window must see `halo` pixels beyond the core, unless it reaches the image border.
        assert (w0 == 0 or w0 + halo <= start) and (w0 + window == size or stop + halo <= w0 + window)
        out.append((w0, start, stop))
        start = stop
    return out


def _n_out_channels(model: nn.Module, img: np.ndarray, dev: torch.device, align: int = 1) -> int:
    # A tiny probe forward pass; networks here map (N, C, h, w) to (N, C_out, s*h, s*w) for any h, w >= 8 that are
    # multiples of their alignment (a U-Net of depth 4 pools to 1/16) and leave 2 px at the deepest level (reflection)
    side = max(-(-8 // align) * align, 2 * align)
    with torch.inference_mode():
        probe = torch.from_numpy(np.ascontiguousarray(img[:, :side, :side])).to(dev)[None]
        # the network that runs, already on the device; a prepared one's module uncompiled (no compile per probe)
        return int(getattr(model, "module", model)(probe).shape[1])


# run_tiled's own context (a name the tests and benchmarks can replace).
_reuse_freed_memory = keep_freed_memory


# Optimised copies per original model: rebuilding one per call (Denoiser.predict calls run_tiled once per frame)
# would repeat the accuracy probe of precision="auto" and the compilation.
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> tuple:
    """
    What a copy of ``model`` is built from: a hash of every parameter's and buffer's values (edits through ``.data``,
    ``load_state_dict(assign=True)`` or ``vector_to_parameters`` leave the version counters as they were), and the
    modules' settings (a BatchNorm's ``eps``, a U-Net's ``residual`` or ``log_var_offset``). Not the training mode
    nor the Monte-Carlo switch: those are keys of their own. A CRC-32 of the values (a change detector, not a
    cryptographic hash) with each tensor's version, dtype and shape: 0.7 ms for the default U-Net's 0.5 million
    weights on one thread.
    """
    crc, layout = 0, []
    for t in (*model.parameters(), *model.buffers()):
        crc = zlib.crc32(t.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy(), crc)
        # (inference tensors, made under torch.inference_mode, have no version counter)
        layout.append((None if t.is_inference() else t._version, t.dtype, tuple(t.shape)))
    plain = bool | int | float | str | None
    settings = tuple(
        (name, k, v)
        for name, m in model.named_modules()
        for k, v in sorted(vars(m).items())
        if not k.startswith("_")
        and k not in ("training", "mc")
        and (isinstance(v, plain) or (isinstance(v, tuple) and all(isinstance(i, plain) for i in v)))
    )
    return crc, tuple(layout), settings


# Networks whose weights this thread holds fixed while it runs them many times (`weights_fixed`): per thread, so
# that another thread, which may change them meanwhile, never runs a copy of the old ones.
_FIXED = threading.local()


@contextlib.contextmanager
def weights_fixed(model: nn.Module | None) -> Iterator[None]:
    """
    Within it, ``model``'s weights and settings are taken as fixed by this thread: their fingerprint, which tells
    `run_tiled` whether its cached optimised copy is still the network's, is taken once instead of at every call (a
    denoiser's prediction runs its network a few times per frame, and the fingerprint of its default U-Net, 0.7 ms
    on one thread, is 7 % of a call on a 64 x 64 frame). Nested uses share the fingerprint taken by the outermost;
    other threads take their own.
    """
    if model is None:
        yield
        return
    held = getattr(_FIXED, "held", None)
    if held is None:
        held = _FIXED.held = {}
    entry = held.get(id(model))
    if entry is None:  # the entry holds the network: its id stays its own while held
        held[id(model)] = entry = [model, _fingerprint(model), 0]
    entry[2] += 1
    try:
        yield
    finally:
        entry[2] -= 1
        if entry[2] == 0:
            held.pop(id(model), None)


def _cached(model: nn.Module, key: tuple, build) -> nn.Module:
    # A copy is rebuilt whenever the network's weights or settings changed since (`_fingerprint`). Monte-Carlo
    # dropout (UNet.mc_dropout), which the optimised U-Net does not implement, gets a copy of its own (the key's
    # last item): prediction switches it on and off around every frame, which must not rebuild either copy.
    fixed = getattr(_FIXED, "held", {}).get(id(model))
    fingerprint = fixed[1] if fixed is not None and fixed[0] is model else _fingerprint(model)
    cache = _PREPARED.setdefault(model, {})
    entry = cache.get(key)
    if entry is None or entry[0] != fingerprint:
        entry = (fingerprint, build())
        cache[key] = entry
    return entry[1]


def _magnitude(img: np.ndarray) -> tuple[int, int]:
    """The octaves of an image's largest absolute value and of its range: bfloat16's error, relative to the output's
    range, grows with an offset against the range, so precision="auto" decides afresh for another class."""
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return (0, 0)
    peak, span = float(np.abs(finite).max()), float(finite.max() - finite.min())
    return (math.frexp(peak)[1], math.frexp(span)[1])


def _prepared(
    model: nn.Module, dev: torch.device, precision: str, compile: bool, example: torch.Tensor, img: np.ndarray
) -> nn.Module:
    # "auto" probes bfloat16 on an example: a decision that holds for inputs of the example's magnitude only
    magnitude = _magnitude(img) if precision == "auto" else None
    return _cached(
        model,
        (str(_indexed(dev)), precision, compile, _draws_at_random(model), magnitude),  # "cuda", "cuda:0": one copy
        lambda: prepare_model(model, device=dev, precision=precision, compile=compile, example=example),
    )


def _eager_on(model: nn.Module, dev: torch.device) -> nn.Module:
    """The caller's network itself on ``dev``, else its copy there, cached like the optimised copies: the network is
    never moved, and a copy per frame (a fitted Denoiser's network is kept on the CPU) would cost a deep copy each."""
    if _is_on(model, dev):
        return model
    return _cached(model, (str(_indexed(dev)), None, False, _draws_at_random(model)), lambda: _on_device(model, dev))


def _batches(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def run_tiled(
    model: nn.Module,
    image: np.ndarray,
    *,
    scale: int = 1,
    halo: int,
    tile_size: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    align: int = 1,
    valid: np.ndarray | None = None,
    out: np.ndarray | None = None,
    progress: bool = True,
    desc: str = "tiles",
    precision: str | None = None,
    compile: bool = False,
) -> np.ndarray:
    """
    Run an image-to-image network over a large 2-D (or channels-first 3-D) image in overlapping tiles.

    Tiles of ``tile_size`` pixels (halo included) are cut with a halo of ``halo`` pixels, run in batches
    under `torch.inference_mode`, and only their cores are written to the output. Because the halo covers
    the receptive field and tiles at the border reach the border, the result equals whole-image inference to
    floating-point rounding, with no seams and no blending. Memory is bounded by ``tile_size`` and
    ``batch_size``, not by the image size.

    Parameters
    ----------
    model : `torch.nn.Module`
        Network mapping ``(N, C, h, w)`` to ``(N, C_out, scale*h, scale*w)``. It is put in ``eval()`` mode and
        stays on its device: where that is not ``device``, a copy runs there.
    image : `numpy.ndarray`
        ``(H, W)`` or ``(C, H, W)`` input, finite values only.
    scale : int
        Output pixels per input pixel (2 for Enhance).
    halo : int
        Overlap on each side of a tile, in input pixels; at least the network's receptive-field radius.
    tile_size : int, optional
        Tile edge in input pixels, halo included. Default: from `default_tile_size`. One below `smallest_tile`
        (a core as wide as both halos) is raised to it, with a log line: the result does not depend on it.
    batch_size : int, optional
        Tiles per forward pass (default: `default_batch_size`).
    device : str or `torch.device`, optional
        ``"cpu"``, ``"cuda"``, or `None` for the best available.
    align : int
        Tile starts and sizes are multiples of this (``2**depth`` for U-Nets); the image must be too.
    valid : `numpy.ndarray`, optional
        Boolean ``(H, W)`` mask of the pixels whose output is wanted. Tiles whose cores hold no valid pixel
        (e.g. off the solar disk) are not computed; their output is NaN.
    out : `numpy.ndarray`, optional
        Preallocated ``(C_out, scale*H, scale*W)`` float32 output, e.g. a `numpy.memmap`.
    progress : bool
        Show a tqdm progress bar over tiles.
    desc : str
        Label of the progress bar.
    precision : {None, "float32", "bfloat16", "auto"}
        `None` (default) runs ``model`` as given. Any other value runs an optimised copy built by
        `~sunpy_nn.nn.prepare_model` (cached per model, device and setting) in that precision: ``"float32"`` is
        faster and equal to the default to about 1e-6 of the output range; see `~sunpy_nn.nn.prepare_model` for
        ``"bfloat16"`` and ``"auto"``. With a precision and no ``tile_size``, tiles default to
        `optimized_tile_size` (larger: less overlap).
    compile : bool
        Run the optimised copy through `torch.compile` (implies ``precision="float32"`` if `None`); falls back to
        eager mode, with a logged warning, where compilation fails.

    Returns
    -------
    `numpy.ndarray`
        ``(C_out, scale*H, scale*W)`` float32, or ``(scale*H, scale*W)`` if the input was 2-D and
        ``C_out == 1``; NaN where ``valid`` left tiles out.

    Raises
    ------
    ValueError
        ``image`` is not 2-D or 3-D, ``precision`` is not `None` or one of `PRECISIONS`, ``H`` or ``W`` is not a
        multiple of ``align`` (where it needs more than one tile).
    RuntimeError
        ``device="cuda"`` on a machine where torch sees no GPU (`~sunpy_nn.nn.resolve_device`).

    Notes
    -----
    On the CPU, torch's thread count follows the package's thread policy (`~sunpy_nn.nn.device.apply_thread_policy`:
    the user's choice if any, else the CPUs this process may use less those other processes keep busy; one in a
    thread other than the main thread, such as a dask task's).

    Examples
    --------
    >>> import numpy as np
    >>> from sunpy_nn.nn import EnhanceNet, run_tiled
    >>> net = EnhanceNet(depth=1, n_filters=8)
    >>> run_tiled(net, np.ones((37, 41), dtype="float32"), scale=2, halo=net.receptive_radius,
    ...           tile_size=32, progress=False).shape
    (74, 82)
    """
    dev = resolve_device(device)
    if dev.type == "cpu":  # the one place where every network of the package runs: its one thread policy
        apply_thread_policy()
    optimised = precision is not None or compile
    if optimised and (precision or "float32") not in PRECISIONS:
        raise ValueError(f"precision must be None or one of {PRECISIONS}, not {precision!r}")
    squeeze = image.ndim == 2
    img = np.asarray(image, dtype=np.float32)
    if squeeze:
        img = img[None]
    if img.ndim != 3:
        raise ValueError(f"image must be 2-D (H, W) or 3-D (C, H, W), got shape {image.shape}")
    _, ny, nx = img.shape
    batch_size = max(1, int(batch_size or default_batch_size(dev)))
    tile_size = _tile_edge(model, dev, scale, tile_size, batch_size, optimised)
    if int(tile_size) < (smallest := smallest_tile(halo, align)):
        # a tiny core makes a tile per pixel or so: hours instead of seconds, for the same result
        log.info("tile_size=%d leaves no useful core inside a halo of %d px: using %d", tile_size, halo, smallest)
        tile_size = smallest
    tile_size = -(-int(tile_size) // align) * align
    wy, wx = min(tile_size, ny), min(tile_size, nx)
    if optimised:  # equal windows that just cover the axis, instead of a last window overlapping its neighbour
        wy, wx = _balanced_window(ny, wy, halo, align), _balanced_window(nx, wx, halo, align)
    rows = tile_windows(ny, wy, halo, align)
    cols = tile_windows(nx, wx, halo, align)
    tiles = [(r, c) for r in rows for c in cols]
    if valid is not None:
        tiles = [(r, c) for r, c in tiles if valid[r[1] : r[2], c[1] : c[2]].any()]
    log.debug("run_tiled: %dx%d image, %d tiles of %dx%d (halo %d) on %s", ny, nx, len(tiles), wy, wx, halo, dev)

    original = model.eval()
    if optimised:  # built from the caller's network wherever it is (and cached for it)
        r, c = tiles[0] if tiles else (rows[0], cols[0])
        example = torch.from_numpy(np.ascontiguousarray(img[:, r[0] : r[0] + wy, c[0] : c[0] + wx]))[None]
        model = _prepared(original, dev, precision or "float32", compile, example, img)
    else:
        model = _eager_on(original, dev)
    result = out
    if result is None and valid is not None and len(tiles) < len(rows) * len(cols):
        n_out = _n_out_channels(model, img, dev, align)
        result = np.full((n_out, scale * ny, scale * nx), np.nan, dtype=np.float32)
    elif result is not None and valid is not None:
        result[...] = np.nan
    bar = tqdm(total=len(tiles), desc=desc, unit="tile", disable=not progress or len(tiles) == 1, leave=False)
    keep = _reuse_freed_memory() if optimised and dev.type == "cpu" else contextlib.nullcontext()
    with torch.inference_mode(), keep, _exact_float32(dev):  # float32 on a GPU too (no TF32), as on a CPU
        for batch in _batches(tiles, batch_size):
            stack = np.stack([img[:, r[0] : r[0] + wy, c[0] : c[0] + wx] for r, c in batch])
            pred = model(torch.from_numpy(stack).to(dev)).float().cpu().numpy()
            if result is None:
                result = np.empty((pred.shape[1], scale * ny, scale * nx), dtype=np.float32)
            for k, (r, c) in enumerate(batch):
                (w0y, y0, y1), (w0x, x0, x1) = r, c
                result[:, scale * y0 : scale * y1, scale * x0 : scale * x1] = pred[
                    k, :, scale * (y0 - w0y) : scale * (y1 - w0y), scale * (x0 - w0x) : scale * (x1 - w0x)
                ]
            bar.update(len(batch))
    bar.close()
    if result is None:  # no tile had a valid pixel
        result = np.full((_n_out_channels(model, img, dev, align), scale * ny, scale * nx), np.nan, np.float32)
    if squeeze and result.shape[0] == 1:
        return result[0]
    return result
