"""
The figures of the training guide, written at docs-build time from files that code made (issue #17).

Called by ``generated_pages.write_demo_page_files``; it writes ``docs/guide/generated/training_figures.inc``:

- substitutions (``|train_aug_cost|`` ...) and the table of ``docs/_static/training/intensity_augmentation.json``,
  which ``python benchmarks/intensity_augmentation.py --docs`` writes;
- substitutions for what the model card of the shipped ``enhance_intensity_v2`` records (its darkening settings and
  the SST umbra at the two wavelengths);
- ``training_precision_table.inc``, the table of ``docs/_static/training/precision_<cpu>.json`` (one per CPU
  measured), which ``python benchmarks/training_precision.py --docs`` writes.

The functions that turn a JSON dict into text are pure, so tests can feed them small dicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

AUGMENTATION = Path("_static") / "training" / "intensity_augmentation.json"  # relative to docs/
COMMAND = "python benchmarks/intensity_augmentation.py --docs"
PRECISION = ("_static", "training", "precision_*.json")  # relative to docs/: one file per CPU measured
PRECISION_COMMAND = "python benchmarks/training_precision.py --docs"
LEVELS = {1.0: "quiet Sun", 0.5: "penumbra", 0.3: "umbra", 0.2: "dark umbra"}  # what a darkening factor stands for


def _range(low: float, high: float) -> str:
    """A range of factors as the guide writes them: (0.2, 1) -> "0.2-1.0", (0.15, 1) -> "0.15-1.0"."""
    return "-".join(t if "." in (t := f"{x:g}") else t + ".0" for x in (low, high))


def _pct(x: float) -> str:
    """A percentage with no trailing zeros: 0.15 -> "15 %", 0.125 -> "12.5 %"."""
    return f"{100 * x:.3g} %"


def _bound_pct(x: float) -> str:
    """``x`` as a percentage rounded up to one significant figure: a bound it stays within (0.019 -> "2 %")."""
    if x <= 0:
        return "0 %"
    unit = 10.0 ** math.floor(math.log10(100 * x))
    return f"{round(math.ceil(100 * x / unit) * unit, 10):g} %"


def augmentation_figures(record: dict) -> dict[str, str]:
    """The figures the training guide quotes from one ``intensity_augmentation.json``."""
    without, with_ = record["results"]["without"], record["results"]["with"]
    darkened = [f"x{f}" for f in record["settings"]["factors"] if f < 1]
    settings = record["settings"]
    aug = settings["augmentation"]
    return {
        "train_aug_cost": f"{without['x1.0']['psnr_db'] - with_['x1.0']['psnr_db']:.1f} dB",
        "train_aug_bias_bound": _bound_pct(max(abs(with_[f]["mean_bias_rel"]) for f in darkened)),
        "train_aug_setting": f"{_range(*aug['intensity_range'])}, {_pct(aug['intensity_fraction'])}",
    }


def augmentation_table(record: dict) -> str:
    """An RST table of the held-out PSNR and mean bias, with and without the augmentation, per darkening factor."""
    s = record["settings"]
    aug = s["augmentation"]
    title = (
        f"Two lite networks (depth {s['depth']}, {s['n_filters']} filters), {s['patches']:,} pairs x "
        f"{s['epochs']} epochs, seed {s['seed']}, {record['threads']} CPU thread(s), {record['date'].split()[0]}; "
        f"PSNR and mean bias on {s['held_out_pairs']} held-out MURaM pairs, in units of the darkened quiet-Sun level "
        f"(``{COMMAND}``)"
    )
    lines = [
        f".. list-table:: {title}",
        "   :header-rows: 1",
        "",
        "   * - held-out MURaM scaled by",
        "     - without augmentation",
        f"     - with augmentation ({_range(*aug['intensity_range'])}, {_pct(aug['intensity_fraction'])})",
    ]
    for factor in s["factors"]:
        label = f"x{factor}"
        lines.append(f"   * - {label} ({LEVELS.get(factor, 'darkened')})")
        for case in ("without", "with"):
            r = record["results"][case][label]
            lines.append(f"     - {r['psnr_db']:.2f} dB, bias {r['mean_bias_rel']:+.3f}")
    return "\n".join(lines) + "\n"


def missing_augmentation() -> tuple[dict[str, str], str]:
    """What the page shows while the benchmark's JSON is absent: no figure, the command that makes them."""
    text = f"(not measured yet: run ``{COMMAND}``)"
    keys = ("train_aug_cost", "train_aug_bias_bound", "train_aug_setting")
    return dict.fromkeys(keys, text), f".. note::\n\n   The table is missing: run ``{COMMAND}``.\n"


def card_figures(card: dict) -> dict[str, str]:
    """What the model card of ``enhance_intensity_v2`` records that the training guide quotes."""
    pairs = card["training_recipe"]["train_pairs"]
    sst = next(s for s in card["training_data"] if s["name"] == "sst_sunspot")["stats"]
    dark = pairs["extra_dark"]
    return {
        "train_v2_intensity_fraction": _pct(pairs["intensity_fraction"]),
        "train_v2_intensity_range": _range(*pairs["intensity_range"]),
        "train_v2_extra_dark": _pct(dark["fraction"]),
        "train_v2_dark_range": _range(*dark["range"]),
        "train_sst_umbra_854": f"{sst['darkest_1pct_854nm']:.3f}",
        "train_sst_umbra_617": f"{sst['darkest_1pct_617nm']:.3f}",
    }


PRECISION_HEADER = ("CPU", "training", "patches/s", "fit", "rms error Q/U/V", "within 1/2 sigma")


def precision_table(records: list[dict]) -> str:
    """An RST table of the denoiser trained in float32 and bfloat16: per CPU, the step's speed and the errors."""
    if not records:
        return f".. note::\n\n   The table is missing: run ``{PRECISION_COMMAND}``.\n"
    speed = records[0]["speed"]
    title = (
        "The default denoiser's training in float32 and bfloat16: patches/s of the Noise2Noise step (batches of "
        f"{speed['batch']} of {speed['patch']} x {speed['patch']}, the thread policy's threads), and the default "
        "denoiser fitted on the white-noise cube of ``benchmarks/denoise_science.py`` (seed 0, one thread per fit, "
        "two fits at once, prediction in float32): "
        f"the fit's time, the rms error of Q/U/V in units of the noise and the coverage (``{PRECISION_COMMAND}``)"
    )
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    lines += [f"   * - {h}" if i == 0 else f"     - {h}" for i, h in enumerate(PRECISION_HEADER)]
    for record in records:
        cpu, speed = record["cpu"], record["speed"]
        name = f"{cpu['model']} ({cpu['class']}{', AMX' if cpu['flags'].get('amx') else ''}), {record['date'][:10]}"
        for q in record["quality"]:
            cells = [
                name,
                f"{q['precision']}, {q['epochs']} epochs",
                f"{speed[q['precision']]['patches_s']:.0f} ({speed['threads']} threads)",
                f"{q['fit_s']:.0f} s",
                "/".join(f"{v:.3f}" for v in q["rms_QUV"]),
                "/".join(f"{v:.2f}" for v in q["coverage"]),
            ]
            lines += [f"   * - {c}" if i == 0 else f"     - {c}" for i, c in enumerate(cells)]
    return "\n".join(lines) + "\n"


def write_training_files(source: Path, out: Path, write: Callable[[Path, str], None]) -> None:
    """Write ``training_figures.inc`` into ``out`` (``docs/guide/generated``) from the files under ``source``."""
    from sunpy_nn.data import model_card

    path = source / AUGMENTATION
    if path.exists():
        record = json.loads(path.read_text())
        figures, table = augmentation_figures(record), augmentation_table(record)
    else:  # tests/test_docs_generated.py fails on the missing file; the build still shows the page
        figures, table = missing_augmentation()
    figures |= card_figures(model_card("enhance_intensity_v2"))
    subs = "".join(f".. |{key}| replace:: {value}\n" for key, value in figures.items())
    header = ".. Written by docs/_ext/generated_training.py; do not edit.\n\n"
    write(out / "training_figures.inc", header + subs)
    write(out / "training_augmentation_table.inc", header + table)
    records = [json.loads(p.read_text()) for p in sorted(source.joinpath(*PRECISION[:-1]).glob(PRECISION[-1]))]
    write(out / "training_precision_table.inc", header + precision_table(records))
