"""The ``sunpy-nn`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def _enhance(args: argparse.Namespace) -> int:
    import sunpy.map

    from sunpy_nn.enhance import enhance_map

    out = Path(args.output) if args.output else Path(args.input).with_name(Path(args.input).stem + "_enhanced.fits")
    if out.exists() and not args.overwrite:
        raise SystemExit(f"sunpy-nn: {out} exists; pass --overwrite to replace it")
    smap = sunpy.map.Map(args.input)
    result = enhance_map(
        smap,
        kind=args.kind,
        weights=args.weights,
        device=args.device,
        tile_size=args.tile_size,
        normalisation=args.normalisation,
        progress=not args.quiet,
    )
    result.save(out, overwrite=args.overwrite)
    (ny, nx), (my, mx) = smap.data.shape, result.data.shape
    print(f"{args.input}: {nx}x{ny} -> {out}: {mx}x{my}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    from sunpy_nn import __version__

    parser = argparse.ArgumentParser(
        prog="sunpy-nn",
        description="Deep-learning enhancement (Enhance) and denoising (Noise2Noise) for solar data.",
    )
    parser.add_argument("--version", action="version", version=f"sunpy_nn {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "enhance",
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_enhance)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sunpy-nn`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    from sunpy_nn.utils import WeightsError

    try:
        return args.func(args)
    except (WeightsError, ValueError, TypeError, OSError) as exc:
        print(f"sunpy-nn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
