"""
Copy the validation report's figures into the model cards of the shipped Enhance weights.

    python benchmarks/validate_enhance.py --docs
    python scripts/update_model_cards.py docs/_static/validation/summary.json

For each kind and version (v1, v2) it writes ``validation["report"]``: the report's date, the held-out PSNR/SSIM
table and every target row with the measured value and whether it is met. Only the ``.json`` cards change; the
weight files and their SHA-256 do not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "sunpy_nn" / "data" / "weights"


def _kind(check: str) -> str:
    magnetic = ("magnetogram", "|B", "flux", "Sign flips")
    return "blos" if any(m in check for m in magnetic) else "intensity"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("summary", type=Path)
    args = p.parse_args()
    summary = json.loads(args.summary.read_text())
    for kind in ("intensity", "blos"):
        for version in ("v1", "v2"):
            card_path = WEIGHTS / f"enhance_{kind}_{version}.json"
            if not card_path.exists():
                continue
            card = json.loads(card_path.read_text())
            weights = summary["weights"][kind].get(version) or {}
            if weights.get("sha256") and weights["sha256"] != card["sha256"]:
                raise SystemExit(f"{card_path.name}: the report validated other weights ({weights['sha256'][:12]})")
            held_out = [
                {k: row[k] for k in ("frame", "detector", "rl_best_iterations", "scores")}
                for row in summary["held_out"]
                if row["kind"] == kind
            ]
            targets = [
                {"group": t["group"], "check": t["check"], "target": t["target"], **t[version]}
                for t in summary["targets"]
                if t.get(version) and _kind(t["check"]) == kind
            ]
            card.setdefault("validation", {})["report"] = {
                "source": "docs/guide/validation.rst (benchmarks/validate_enhance.py)",
                "date": summary["date"],
                "sunpy_nn_version": summary["sunpy_nn_version"],
                "held_out": held_out,
                "targets": targets,
            }
            card["validation"].pop("report_targets", None)  # superseded: measured by the old report
            card_path.write_text(json.dumps(card, indent=2) + "\n")
            print(f"{card_path.name}: {sum(t['met'] for t in targets)}/{len(targets)} targets met")


if __name__ == "__main__":
    main()
