"""Which optical flow keyframe transfer should use where motion is large (issue 18): DIS presets, DIS's variational
refinement ("fine") and a larger working side, for the chain steps and for the re-alignment against the keyframe.

Each setting changes :class:`~chromaflow.core.transfer.PropagationParams` only; the transfer (``propagate``, key 0)
runs under the protocol of ``benchmarks/transfer.py`` (its ``Sequence`` and ``evaluate``: PSNR over the non-key
frames on 8-bit RGB, chroma warp error against ground-truth flow). The choice is made on the TUNING sequences with
fast motion (bmx-trees, kite-surf) and then reported on the held-out ones (breakdance, the third fast-motion dev
sequence, and dog, scooter-black), which no choice looks at. Seconds per frame come from the same run.

    python benchmarks/transfer_flow.py [--frames N] [--out benchmarks/results/transfer_flow.json]
"""

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import DATA, Sequence, evaluate, load_sequence, log, run_mode

from chromaflow.core.transfer import PropagationParams

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_flow.json"
TUNING = ("bmx-trees", "kite-surf")
HELD_OUT = ("breakdance", "dog", "scooter-black")
# name -> changes to the default PropagationParams (chain steps: flow_preset; re-alignment: anchor_preset)
SETTINGS: dict[str, dict[str, Any]] = {
    "today (chain ultrafast, anchor fine, 480)": {},
    "chain fast": {"flow_preset": "fast"},
    "chain medium": {"flow_preset": "medium"},
    "chain fine": {"flow_preset": "fine"},
    "anchor medium": {"anchor_preset": "medium"},
    "working side 640": {"max_side": 640},
}


def run(seq: Sequence, changes: dict[str, Any]) -> dict[str, float]:
    outputs, (fps, _) = run_mode(seq, [0], "propagate", dataclasses.replace(PropagationParams(), **changes))
    return evaluate(seq, outputs, [0]) | {"seconds_per_frame": 1.0 / fps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for name in (*TUNING, *HELD_OUT):
        log(f"[{name}] loading")
        seq = Sequence(name, load_sequence(DATA / name, args.frames))
        for setting, changes in SETTINGS.items():
            rows.setdefault(setting, {})[name] = run(seq, changes)
            r = rows[setting][name]
            log(
                f"[{name}] {setting}: {r['psnr']:.2f} dB, warp error {r['warp_error']:.2f}, {r['seconds_per_frame']:.3f} s"
            )

    def mean(setting: str, names: tuple[str, ...], key: str) -> float:
        return float(np.mean([rows[setting][n][key] for n in names]))

    today = next(iter(SETTINGS))
    gains = {s: mean(s, TUNING, "psnr") - mean(today, TUNING, "psnr") for s in SETTINGS}
    chosen = max(SETTINGS, key=lambda s: (gains[s], s == today))
    print(f"{'setting':42s} {'tuning dB':>9s} {'held-out dB':>11s} {'breakdance':>10s} {'s/frame':>8s}")
    for s in SETTINGS:
        print(
            f"{s:42s} {mean(s, TUNING, 'psnr'):9.2f} {mean(s, HELD_OUT, 'psnr'):11.2f} "
            f"{rows[s]['breakdance']['psnr']:10.2f} {mean(s, TUNING + HELD_OUT, 'seconds_per_frame'):8.3f}"
        )
    print(f"chosen on the tuning sequences: {chosen}")
    payload = {
        "protocol": "benchmarks/transfer.py (ours), propagate, key 0; chosen on the tuning sequences only",
        "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
        "frames_per_sequence": args.frames,
        "tuning": list(TUNING),
        "held_out": list(HELD_OUT),
        "settings": {s: SETTINGS[s] for s in SETTINGS},
        "tuning_gain_db": gains,
        "chosen": chosen,
        "per_sequence": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
