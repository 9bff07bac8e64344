"""The ``sunpy-nn`` command line."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from pathlib import Path

__all__ = ["main"]


def _read_map(path: str):
    """
    The one map of a FITS file, as ``sunpy.map.Map`` reads it, or a `ValueError` that says what the file holds.

    sunpy gives a list for a file of several 2-D image HDUs and raises its ``NoMapsInFileError`` (not an error the
    command line reports) for a file of tables only: both were tracebacks.
    """
    import sunpy.map
    from sunpy.util.exceptions import NoMapsInFileError

    try:
        smap = sunpy.map.Map(path)
    except NoMapsInFileError:
        raise ValueError(
            f"{path} holds no image (only tables or 1-D data): give a FITS file with one 2-D image HDU"
        ) from None
    if isinstance(smap, list):
        raise ValueError(
            f"{path} holds {len(smap)} images; pass one file per image, or extract the HDU you want into a file of "
            "its own (astropy.io.fits)"
        )
    return smap


def _enhance(args: argparse.Namespace) -> int:
    from sunpy_nn.enhance import enhance_map
    from sunpy_nn.enhance._batch import _output_name

    # Everything about the output is checked before the map is read and enhanced (minutes for a full disk).
    if Path(args.input).is_dir():
        raise ValueError(f"{args.input} is a folder: give one FITS file (for many, use enhance_map in Python)")
    out = Path(args.output) if args.output else Path(args.input).with_name(_output_name(args.input, 0))
    if out.is_dir():
        raise ValueError(f"{out} is a folder: give the output file's name, e.g. {out / _output_name(args.input, 0)}")
    if out.suffix.lower() not in (".fits", ".fts", ".fit"):
        raise ValueError(f"{out}: the output is a FITS file; give it the extension .fits")
    if not out.parent.is_dir():
        raise ValueError(f"{out}: the folder {out.parent} does not exist; create it first")
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    smap = _read_map(args.input)
    extra = [int(smap.meta.get(f"naxis{i}", 1)) for i in range(3, int(smap.meta.get("naxis", 2)) + 1)]
    if any(n > 1 for n in extra):  # sunpy kept the first 2-D frame of a cube (and warned that it truncates)
        raise ValueError(
            f"{args.input} holds an array of {len(extra) + 2} dimensions (a cube?), of which sunpy reads only the "
            "first frame: sunpy-nn enhance takes one 2-D map (an HMI continuum image or magnetogram); for a CRISP "
            "cube, use sunpy-nn denoise"
        )
    result = enhance_map(
        smap,
        kind=args.kind,
        weights=args.weights,
        device=args.device,
        tile_size=args.tile_size,
        normalisation=args.normalisation,
        precision=None if args.precision == "exact" else args.precision,
        compile=args.compile,
        progress=not args.quiet,
    )
    result.save(out, overwrite=args.overwrite)
    (ny, nx), (my, mx) = smap.data.shape, result.data.shape
    print(f"{args.input}: {nx}x{ny} -> {out}: {mx}x{my}")
    return 0


def _magnetic(smap) -> bool:
    """Whether ``smap`` is a map in a magnetic unit (G, kG, Mx/cm^2, T)."""
    return smap is not None and smap.unit is not None and smap.unit.is_equivalent("G")


def _load_training_image(path: str, normalise: str):
    import numpy as np

    if path.endswith(".npy"):
        data, scale = np.load(path).astype(np.float64), None
    else:
        smap = _read_map(path)
        data, scale = np.asarray(smap.data, dtype=np.float64), smap
    if normalise == "mean":
        data = data / data.mean()
    elif normalise == "gauss-to-kg" and not _magnetic(scale):
        data = data / 1000.0  # a map in a magnetic unit is not divided here: train_enhance converts it to kG itself
    return data if scale is None else scale._new_instance(data, scale.meta)


def _train_enhance(args: argparse.Namespace) -> int:
    from sunpy_nn.data import save_weights
    from sunpy_nn.training import train_enhance

    suffix = Path(args.output).suffix
    if suffix and suffix != ".pt":  # checked before the training, not after it
        raise ValueError(
            f"--output {args.output} ends in {suffix}, but the weights are written as a torch .pt file: "
            f"name it {Path(args.output).with_suffix('.pt')}"
        )
    images = [_load_training_image(p, args.normalise) for p in args.images]
    model, history = train_enhance(
        images,
        pixel_scale=args.pixel_scale,
        kind=args.kind,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        n_patches=args.patches,
        n_validation=args.validation,
        input_size=args.input_size,
        validation_size=args.validation_size,
        depth=args.depth,
        n_filters=args.filters,
        device=args.device,
        seed=args.seed,
        checkpoint_dir=args.checkpoint_dir,
        progress=not args.quiet,
    )
    card = {"kind": args.kind, "training_data": [str(p) for p in args.images], "training_recipe": history["recipe"]}
    card["training_data_normalisation"] = args.normalise  # what the images were divided by before training
    card["validation"] = {"val_mse_per_epoch": history["val_loss"], "best_epoch": history["best_epoch"]}
    path = save_weights(model, args.output, card=card)
    print(f"best validation MSE {min(history['val_loss']):.4g} at epoch {history['best_epoch']}; wrote {path}")
    return 0


def _read_values(text: str | None, name: str):
    """Values from a comma-separated list or a text/.npy file (one per line)."""
    import numpy as np

    if text is None:
        return None
    path = Path(text)
    if path.exists():
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        return np.array([line.strip() for line in path.read_text().splitlines() if line.strip()])
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise ValueError(f"--{name} is empty")
    return np.array(values)


def _read_cube(args: argparse.Namespace, lazy: bool | str = "dask"):
    import astropy.units as u
    from astropy.time import Time

    from sunpy_nn.io import read_crisp

    kw = {}
    wavelengths = _read_values(args.wavelengths, "wavelengths")
    if wavelengths is not None:
        kw["wavelengths"] = wavelengths.astype(float) * u.Unit(args.wavelength_unit)
    times = _read_values(args.times, "times")
    if times is not None:
        kw["times"] = Time(list(times.astype(str)), scale="utc")
    if args.pixel_scale is not None:
        kw["pixel_scale"] = args.pixel_scale * u.arcsec
    if args.center is not None:
        kw["center"] = args.center * u.arcsec
    # Lazy: training reads a pool of frames, prediction and writing go frame by frame; never the whole cube.
    return read_crisp(args.input, lazy=lazy, **kw)


def _temporal_arg(value: str) -> int | str:
    """``--temporal``: a half-window of at least 0, or 'auto'."""
    if value == "auto":
        return value
    return _int_at_least(0)(value)


def _denoise(args: argparse.Namespace) -> int:
    import astropy.units as u

    from sunpy_nn.denoise import Denoiser, auto_temporal
    from sunpy_nn.denoise._denoise_cube import _log_temporal_default
    from sunpy_nn.io import write_crisp
    from sunpy_nn.io.crisp import _check_output, _check_writable
    from sunpy_nn.nn import resolve_device

    # Every argument is checked before the cube is read and the network trained (minutes): a run never fails in
    # the writer at the end.
    out = Path(args.output)
    _check_output(out, overwrite=args.overwrite)
    if out.suffix.lower() == ".icube":  # write_lp would refuse the denoised floats, but only after the training
        raise ValueError(
            f"{out}: an .icube holds 16-bit integers and the denoised values are not integers; write a .fits file "
            "(with the uncertainty) or an .fcube"
        )
    if out.suffix.lower() == ".fcube" and args.uncertainty != "none":
        raise ValueError(
            f"{out}: an LP cube has no place for the uncertainty; write a .fits file to keep it, or pass "
            "--uncertainty none"
        )
    if not Path(args.input).exists():
        raise FileNotFoundError(f"{args.input} does not exist")
    stokes = None if [s.lower() for s in args.stokes] == ["all"] else tuple(s.upper() for s in args.stokes)
    if stokes is not None and (not stokes or any(s not in ("I", "Q", "U", "V") for s in stokes)):
        raise ValueError(f"--stokes takes I, Q, U, V (any of them) or 'all', not {' '.join(args.stokes)}")
    try:
        u.Unit(args.wavelength_unit)
    except ValueError:
        raise ValueError(f"--wavelength-unit {args.wavelength_unit!r} is not a unit (e.g. nm, Angstrom)") from None
    resolve_device(args.device)
    uncertainty = None if args.uncertainty == "none" else args.uncertainty
    precision = None if args.precision == "exact" else args.precision
    if args.denoiser:
        training = [
            f"--{k.replace('_', '-')}"
            for k in ("mode", "epochs", "patches", "patch_size", "temporal", "train_precision")
            if getattr(args, k) is not None
        ] + [flag for flag, on in (("--no-spectral-pca", args.no_spectral_pca), ("--no-align", args.no_align)) if on]
        training += ["--noise-per-tuning"] if args.noise_per_tuning is not None else []
        if training:
            raise ValueError(
                f"{', '.join(training)} {'applies' if len(training) == 1 else 'apply'} only when training; with "
                "--denoiser the trained denoiser is used as it is. Leave them out, or leave out --denoiser to train on "
                "this cube."
            )
        denoiser = Denoiser.load(args.denoiser)
    else:
        denoiser = Denoiser(
            mode=args.mode or "image",
            spectral_pca=False if args.no_spectral_pca else None,
            align=not args.no_align,
            noise_per_tuning={"auto": None, "on": True, "off": False}[args.noise_per_tuning or "auto"],
        )
        if args.patch_size is not None and args.patch_size % 2**denoiser.depth:
            raise ValueError(f"--patch-size must be a multiple of {2**denoiser.depth}, not {args.patch_size}")
    denoiser._check_predict_args(uncertainty, 20, None, args.seed, precision, trained=bool(args.denoiser))
    # The cube is read once, lazily (temporal mode trains on stacks of scans and predicts scan by scan), unless a
    # pixel-shuffling denoiser (--denoiser) needs whole frames in memory.
    cube = _read_cube(args, lazy=False if denoiser.shuffle > 1 else "dask")
    if not args.denoiser:
        if args.temporal in (None, "auto"):  # the default, as denoise_cube's
            denoiser.temporal = auto_temporal(cube)
            _log_temporal_default(denoiser.temporal)
        else:
            denoiser.temporal = int(args.temporal)
    try:  # the result keeps this cube's WCS: a cube write_crisp cannot write fails now, not after fit
        _check_writable(cube)
    except ValueError as exc:
        hint = "or denoise it in Python (sunpy_nn.denoise_cube) and save the result yourself"
        raise ValueError(f"{exc}; {hint}") from exc
    if not args.denoiser:
        denoiser.fit(
            cube,
            epochs=args.epochs or 10,
            patches_per_epoch=args.patches or 1000,
            patch_size=args.patch_size,
            stokes=stokes,
            device=args.device,
            seed=args.seed,
            progress=not args.quiet,
            precision=args.train_precision or "float32",
        )
    result = denoiser.predict(
        cube,
        uncertainty=uncertainty,
        stokes=stokes,
        device=args.device,
        seed=args.seed,
        precision=precision,
        compile=args.compile,
        progress=not args.quiet,
    )
    # The result's provenance record (software, method, mode, temporal, Stokes, model and its SHA-256) becomes the
    # file's HISTORY in write_crisp, as for a result of the Python API: nothing to add here.
    write_crisp(result, out, overwrite=args.overwrite, progress=not args.quiet)
    # the noise measured in this cube (the denoiser's "noise" are its training cube's, when it was loaded)
    print(f"{args.input} -> {out}: noise levels {result.meta['sunpy_nn']['noise_of_input']}")
    return 0


def _int_at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (argparse names the option when it is not)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _demo(args: argparse.Namespace) -> int:
    from sunpy_nn.demo import run_demo

    run_demo(args.output_dir, seed=args.seed, quick=args.quick, device=args.device, progress=not args.quiet)
    return 0


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "auto", "exact"],
        default="float32",
        help="network arithmetic: optimised float32 (default), bfloat16, auto, or exact (the plain network)",
    )
    parser.add_argument("--compile", action="store_true", help="compile the network with torch.compile")


def _build_parser() -> argparse.ArgumentParser:
    from sunpy_nn import __version__

    parser = argparse.ArgumentParser(
        prog="sunpy-nn",
        description="Deep-learning enhancement (Enhance) and denoising (Noise2Noise) for solar data.",
    )
    parser.add_argument("--version", action="version", version=f"sunpy_nn {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    # -v after the command too (sunpy-nn denoise -v ...), counted apart and added (main) to any given before it
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="count", default=0, dest="verbose_after", help="log more (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "enhance",
        parents=[verbose],
        help="x2 deconvolution and super-resolution of an HMI map (FITS in, FITS out)",
        description="Enhance an SDO/HMI continuum image or magnetogram: twice the pixels, deconvolved, with a WCS "
        "that keeps every pixel edge in place. The output reads back with sunpy.map.Map as the same kind of map.",
    )
    p.add_argument("input", help="FITS file that sunpy.map.Map reads as one 2-D map")
    p.add_argument("-o", "--output", help="output FITS file (default: INPUT_enhanced.fits)")
    p.add_argument("--kind", choices=["intensity", "blos"], help="data kind (default: from the header)")
    p.add_argument("--weights", help="registered model name, .pt weight file, or original Keras .h5 file")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU if there is one)")
    p.add_argument("--tile-size", type=int, help="tile edge in input pixels (default: chosen from memory)")
    p.add_argument(
        "--normalisation",
        default="auto",
        choices=["auto", "quiet_sun", "limb_darkening", "none"],
        help="continuum normalisation (default: auto)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _add_network_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_enhance)

    t = sub.add_parser(
        "train-enhance",
        parents=[verbose],
        help="train an Enhance network on your own high-resolution images",
        description="Train Enhance with the paper's recipe on high-resolution images (simulation snapshots): "
        "pairs are degraded with HMI's PSF and resampled to 0.504 arcsec/pix (input) and with a 28 cm Airy "
        "pattern to 0.252 arcsec/pix (target). The right quarter of every image is held out for validation.",
    )
    t.add_argument("images", nargs="+", help=".npy arrays or FITS maps, in I/Ic or kG (see --normalise)")
    t.add_argument("--kind", choices=["intensity", "blos"], required=True)
    t.add_argument("--pixel-scale", type=float, help="arcsec/pix of .npy images (e.g. 0.0662 for MURaM)")
    t.add_argument("--normalise", choices=["none", "mean", "gauss-to-kg"], default="none")
    t.add_argument("-o", "--output", required=True, help="weight file to write (.pt; a .json model card beside it)")
    t.add_argument("--epochs", type=_int_at_least(1), default=20)
    t.add_argument("--batch-size", type=_int_at_least(1), default=32)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    t.add_argument("--patches", type=_int_at_least(1), default=50_000)
    t.add_argument("--input-size", type=_int_at_least(4), default=50, help="input patch edge in pixels (paper: 50)")
    t.add_argument("--validation-size", type=_int_at_least(4), default=30, help="input edge of validation patches")
    t.add_argument("--validation", type=_int_at_least(1), default=5_000)
    t.add_argument("--depth", type=_int_at_least(1), default=5)
    t.add_argument("--filters", type=_int_at_least(1), default=64)
    t.add_argument("--device")
    t.add_argument("--seed", type=int)
    t.add_argument("--checkpoint-dir", help="resume from / write checkpoints to this folder")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=_train_enhance)

    d = sub.add_parser(
        "denoise",
        parents=[verbose],
        help="Noise2Noise denoising of a CRISP cube (SOLARNET FITS or LP cube), trained on the cube itself",
        description="Denoise a SOLARNET FITS cube (SSTRED's layout, or any FITS cube whose WCS has two spatial "
        "axes and optional wavelength, Stokes and time axes) or a CRISPEX LP cube (*.fcube/*.icube beside its "
        "*_sp cube; give its coordinates with --wavelengths, --times and --pixel-scale unless a companion "
        "*.wcs.fits file is present). The output is a SOLARNET FITS cube with the header kept and the "
        "uncertainty in an 'UNCERT' extension, or, when OUTPUT ends in .fcube, an LP cube without uncertainty "
        "(--uncertainty none).",
    )
    d.add_argument("input", help="SOLARNET/FITS cube, or LP cube (*.fcube, *.icube)")
    d.add_argument(
        "-o", "--output", required=True, help="output .fits file (or .fcube, with --uncertainty none: no room for it)"
    )
    d.add_argument("--wavelengths", help="LP cubes: wavelengths, comma-separated or a text/.npy file")
    d.add_argument("--wavelength-unit", default="nm", help="unit of --wavelengths (default nm)")
    d.add_argument("--times", help="LP cubes: ISO times of the scans, comma-separated or a text file")
    d.add_argument("--pixel-scale", type=float, help="LP cubes: arcsec per pixel")
    d.add_argument("--center", type=float, nargs=2, metavar=("X", "Y"), help="LP cubes: FOV centre in arcsec")
    d.add_argument("--mode", choices=["image", "spectral"], help="denoise images or spectra (default image)")
    d.add_argument(
        "--temporal",
        type=_temporal_arg,
        help="temporal mode: the 2K neighbouring scans, aligned onto each scan, predict it, for series whose field "
        "changes little between scans; 0: single-scan mode, frame by frame. The cube is read lazily in both modes. "
        "Default 'auto': 2 with 5 or more scans, 1 with 3-4, 0 with fewer (as denoise_cube)",
    )
    d.add_argument(
        "--no-spectral-pca",
        action="store_true",
        help="denoise the tunings themselves, not each Stokes parameter's spectral principal components (the "
        "default in image mode): a denoiser that applies to other lines and wavelength grids, at a higher error",
    )
    d.add_argument(
        "--noise-per-tuning",
        choices=("auto", "on", "off"),
        help="a noise level for each tuning (photon noise is lower in a line's core than in the continuum), measured "
        "on the scan differences: 'auto' (default) where the tunings' levels differ by more than 25 %%, 'on' always "
        "(two or more scans), 'off' one level per Stokes parameter",
    )
    d.add_argument(
        "--no-align",
        action="store_true",
        help="train on the scans as they are, without registering them onto one another (by default their "
        "sub-pixel shifts are measured on Stokes I and undone for the training pairs and temporal mode)",
    )
    d.add_argument("--epochs", type=_int_at_least(1), help="training epochs of --patches patches (default 10)")
    d.add_argument("--patches", type=_int_at_least(5), help="training patches per epoch, batches of 5 (default 1000)")
    d.add_argument(
        "--patch-size",
        type=_int_at_least(8),
        help="training patch edge in pixels, a multiple of 4 (default 52, or the largest that fits the image)",
    )
    d.add_argument(
        "--train-precision",
        choices=["float32", "bfloat16"],
        help="arithmetic of the training (default float32); bfloat16 mixed precision is faster on CPUs with AMX or "
        "AVX512-BF16 and recent GPUs, at a slightly higher error (see the training guide)",
    )
    d.add_argument("--stokes", nargs="+", default=["Q", "U", "V"], help="Stokes to denoise, or 'all'")
    d.add_argument("--uncertainty", choices=["aleatoric", "total", "none"], default="aleatoric")
    d.add_argument("--denoiser", help="a trained denoiser (.pt from Denoiser.save) instead of training")
    d.add_argument("--device")
    d.add_argument("--seed", type=_int_at_least(0))
    d.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _add_network_options(d)
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_denoise)

    m = sub.add_parser(
        "demo",
        parents=[verbose],
        help="run both methods on built-in synthetic data and report figures of merit",
        description="Enhance a synthetic HMI-like map and denoise a synthetic CRISP-like cube, print the gain "
        "against the known truth, and write FITS and PNG comparison images to OUTPUT_DIR.",
    )
    m.add_argument("-o", "--output-dir", default="sunpy_nn_demo", help="folder for FITS and PNG files")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--quick", action="store_true", help="smaller data and shorter training (for tests)")
    m.add_argument("--device")
    m.add_argument("-q", "--quiet", action="store_true")
    m.set_defaults(func=_demo)
    return parser


def _option_names(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """Keyword name -> command-line option of a subcommand, e.g. ``{"kind": "--kind", "tile_size": "--tile-size"}``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return {
                a.dest: max(a.option_strings, key=len)
                for a in action.choices[command]._actions
                if a.option_strings and a.dest != "help"
            }
    return {}


_KEYWORD = re.compile(r"\b([a-z_]+)=(?:'([^']*)'|\"([^\"]*)\"|(\w[\w.-]*))?")


def _cli_wording(text: str, options: dict[str, str]) -> str:
    """
    Say ``--kind intensity`` where the library's message says ``kind='intensity'``, for the options of the command.

    The library's errors and warnings name Python keywords; on the command line the user types options.
    """

    def option(match: re.Match) -> str:
        name = match.group(1)
        if name not in options:
            return match.group(0)
        value = next((g for g in match.groups()[1:] if g is not None), None)
        if value == "True":  # a flag: overwrite=True is --overwrite
            return options[name]
        return options[name] if value is None else f"{options[name]} {value}"

    return _KEYWORD.sub(option, text)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (so redirections and captures see it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _configure_logging(verbose: int) -> tuple[logging.Logger, logging.Handler, int]:
    """
    Log sunpy_nn's messages to stderr at the level of ``-v``, through a handler of the ``sunpy_nn`` logger only.

    Not through the root logger (``logging.basicConfig``): sunpy's and astropy's loggers have their own handlers and
    propagate to the root, so a root handler printed each of their messages, and each warning they capture, twice.
    Returns what `main` undoes when it ends, so that calling it in a Python process leaves logging as it was.
    """
    logger = logging.getLogger("sunpy_nn")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = logger.level
    logger.setLevel([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    logger.addHandler(handler)
    return logger, handler, old_level


def main(argv: list[str] | None = None) -> int:
    """
    Entry point of the ``sunpy-nn`` command: ``enhance``, ``train-enhance``, ``denoise`` and ``demo``.

    Warnings are printed once each, on one line, and the expected errors (bad input, missing weights, files) as one
    line ``sunpy-nn COMMAND: error: ...`` in the words of the command line, without a traceback.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (`None`: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success (or when no command is given: the help is printed), 2 after an error that
        was reported (`ValueError`, `TypeError`, `OSError` or `~sunpy_nn.utils.WeightsError`).

    Raises
    ------
    SystemExit
        From `argparse`: for ``--help`` and ``--version`` (status 0) and for arguments that do not parse (status 2).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    import sunpy  # noqa: F401  (sunpy's logger takes over warnings.showwarning when imported: before ours below)
    from sunpy.map.mapbase import MapMetaValidationError

    from sunpy_nn.utils import WeightsError

    options = _option_names(parser, args.command)

    def show(message, category, filename, lineno, file=None, line=None):
        # Each warning once, on one line, in the words of the command line.
        text = _cli_wording(str(message), options)
        print(f"sunpy-nn {args.command}: warning: {category.__name__}: {text}", file=sys.stderr)

    logger, handler, old_level = _configure_logging(args.verbose + getattr(args, "verbose_after", 0))
    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            return args.func(args)
        except (WeightsError, ValueError, TypeError, OSError, RuntimeError, MapMetaValidationError) as exc:
            # RuntimeError: device="cuda" without a GPU, sunpy's "No maps loaded"; MapMetaValidationError: a FITS
            # file without the WCS a map needs. Anything else is a bug, and keeps its traceback.
            print(f"sunpy-nn {args.command}: error: {_cli_wording(str(exc), options)}", file=sys.stderr)
            return 2
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
