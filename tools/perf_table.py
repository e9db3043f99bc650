"""Render the README's performance and quality tables from benchmarks/results/*.json (``make readme-perf``).

The README holds the tables between ``<!-- perf-table:start -->`` and ``<!-- perf-table:end -->``; this script
rewrites that block from the latest results, naming the machine each figure came from. The Models section's table
(``<!-- models-table:start -->`` .. ``end``) comes from ``models.json`` and ``quality_models.json`` the same way. ``--check`` only compares
(exit 1 when the README is stale), which the test suite runs so the table never drifts from the results.
"""

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
MODELS_START, MODELS_END = "<!-- models-table:start -->", "<!-- models-table:end -->"

Row = tuple[str, str, str]  # what, figure, machine


def machine_of(data: dict[str, Any]) -> str:
    """A short description of the machine a results file was measured on."""
    info = data.get("machine") or next(
        (run.get("machine") for run in data.get("runs", {}).values() if isinstance(run, dict)), None
    )
    if isinstance(info, str):
        return info
    if not isinstance(info, dict):
        return "unknown machine"
    if info.get("gpu"):
        return str(info["gpu"])
    cpu = info.get("cpu") or info.get("processor") or "CPU"
    cores = info.get("cores") or info.get("cpu_count") or info.get("cpus") or info.get("cpu_threads")
    return f"{cpu}, {cores} cores" if cores else str(cpu)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def quality_rows(d: dict[str, Any]) -> Iterator[Row]:
    r = d["results"]
    gray, auto, hinted = r["gray"], r["base"], r.get("base+5hints")
    yield (
        "`base` on CBSD68, automatic",
        f"{auto['psnr']:.2f} dB vs gray {gray['psnr']:.2f} ({auto['psnr_gain_db']:+.2f} dB), colourfulness "
        f"{_pct(auto['colorfulness_ratio'])} of ground truth",
        "",
    )
    if hinted:
        yield (
            "`base` on CBSD68, 5 hint points",
            f"{hinted['psnr']:.2f} dB ({hinted['psnr_gain_db']:+.2f} dB)",
            "",
        )


def transfer_rows(d: dict[str, Any]) -> Iterator[Row]:
    """``transfer.py``: the default mode (``auto``), beside ``flow`` (the transfer before the fusion) when measured."""
    s = d["summary"]
    for key, label in (("key0", "key 0"), ("key0_last", "keys 0 + last")):
        if key not in s:
            continue
        rows = s[key]
        main = "auto" if "auto" in rows else "propagate"
        before = f"flow {rows['flow']['psnr']:.2f}, " if "flow" in rows else ""
        yield (
            f"keyframe transfer on DAVIS, {label} (`{main}`)",
            f"{rows[main]['psnr']:.2f} dB ({before}plain flow chain {rows['flow_chain']['psnr']:.2f}, "
            f"gray {rows['gray']['psnr']:.2f}); chroma warp error {rows[main]['warp_error']:.3f}"
            + (f" (flow {rows['flow']['warp_error']:.3f})" if "flow" in rows else ""),
            "",
        )
    for mode, fps in (d.get("fps") or {}).items():
        per_cpu = (d.get("fps_per_cpu_second") or {}).get(mode)
        extra = f" ({per_cpu:.1f} per CPU-second)" if per_cpu else ""
        yield (f"keyframe transfer speed, 854x480, {mode}", f"{fps:.1f} frames/s{extra}", "")


# the DAVIS dev sequences that chose anything in keyframe transfer's round 2; the other three only report
TRANSFER_TUNING = ("bmx-trees", "car-shadow", "kite-surf")


def transfer_sequence_rows(d: dict[str, Any]) -> Iterator[Row]:
    """``transfer.py``, per sequence: ``auto`` beside ``flow`` (before the fusion), tuning and reporting marked."""
    for key, label in (("key0", "key 0"), ("key0_last", "keys 0 + last")):
        for name, rows in sorted(d["per_sequence"].get(key, {}).items()):
            if "auto" not in rows or "flow" not in rows:
                continue
            auto, flow = rows["auto"], rows["flow"]
            role = "tuning" if name in TRANSFER_TUNING else "reporting"
            yield (
                f"keyframe transfer, {name} ({role}), {label}",
                f"auto {auto['psnr']:.2f} dB, flow {flow['psnr']:.2f} dB ({auto['psnr'] - flow['psnr']:+.2f}); "
                f"warp error {auto['warp_error']:.3f} vs {flow['warp_error']:.3f}",
                "",
            )


def transfer_papers_rows(d: dict[str, Any]) -> Iterator[Row]:
    """``transfer.py --scoring papers``: the published propagators' protocol, labelled as a different one."""
    for key, label in (("key0", "key 0"), ("key0_last", "keys 0 + last")):
        rows = d["pooled_psnr"].get(key)
        if rows:
            main = "auto" if "auto" in rows else "propagate"
            yield (
                f"keyframe transfer on DAVIS, {label}, **papers' protocol** (832x480 crop, gray from Y', keyframes "
                f"scored, {d['frames']} frames pooled, float PSNR; not comparable with the rows above)",
                f"{rows[main]:.2f} dB (`{main}`; "
                + (f"flow {rows['flow']:.2f}, " if "flow" in rows else "")
                + f"plain flow chain {rows['flow_chain']:.2f}, gray {rows['gray']:.2f})",
                "",
            )


def transfer_flow_rows(d: dict[str, Any]) -> Iterator[Row]:
    """``transfer_flow.py``: the flow settings measured for large motion and the one the tuning sequences chose."""
    rows, tuning, held = d["per_sequence"], d["tuning"], d["held_out"]

    def mean(setting: str, names: list[str]) -> float:
        return sum(rows[setting][n]["psnr"] for n in names) / len(names)

    figures = "; ".join(f"{s} {mean(s, tuning):.2f} / {mean(s, held):.2f} dB" for s in d["settings"])
    yield (
        f"keyframe transfer flow for large motion, key 0, chosen on {', '.join(tuning)}, held out "
        f"{', '.join(held)} (tuning / held-out PSNR)",
        f"kept: {d['chosen']}. {figures}",
        "",
    )


def transfer_ceilings_rows(d: dict[str, Any]) -> Iterator[Row]:
    """``transfer_ceilings.py``: what matching and a fusion could add to the flow transfer (issue 18's evidence)."""
    gains, tuning = d["gains_db"], d["fit_on"]
    reporting = [n for n in gains if n not in tuning]
    labels = (
        ("match", "matching alone"),
        ("oracle_flow_match", "per-pixel oracle of flow and matching"),
        ("oracle_all", "oracle over flow, chains, fill and matching"),
        ("fused_fitted_elsewhere", "fusion fitted on other sequences"),
        ("best_confidence_power", "best confidence power"),
    )

    def mean(key: str, column: str, names: list[str]) -> str:
        values = [gains[n][key][column] for n in names if column in gains[n][key]]
        return f"{sum(values) / len(values):+.2f}" if values else "n/a"

    sets = [tuning, reporting] if reporting else [tuning]
    for key, label in (("key0", "key 0"), ("key0_last", "keys 0 + last")):
        figures = "; ".join(
            f"{what} {' / '.join(mean(key, c, names) for names in sets)}" for c, what in labels
        )
        held = f" / reporting ({', '.join(reporting)})" if reporting else ""
        yield (
            f"keyframe transfer, what matching + a fusion could add, {label}: dB over today's flow transfer (ab at "
            f"the working resolution), tuning ({', '.join(tuning)}){held}",
            figures,
            "",
        )


def _base_figures(s: dict[str, Any]) -> str:
    return (
        f"warp error -{_pct(s['colorizer_warp_error_reduction'])}, CDC -{_pct(s['colorizer_cdc_reduction'])}, "
        f"PSNR {s['colorizer_psnr_change_db']:+.2f} dB"
    )


def smoothing_rows(d: dict[str, Any]) -> Iterator[Row]:
    s, old = d["summary"], (d.get("baseline") or {})
    names = ", ".join(s.get("sequences", []))
    sets = f" ({names})" if names else ""
    yield (
        "temporal smoothing, synthetic flicker on DAVIS" + (" reporting set" if names else ""),
        f"warp error -{_pct(s['flicker_warp_error_reduction'])}, PSNR {s['flicker_psnr_gain_db']:+.1f} dB",
        "",
    )
    model = d.get("colorizer_model", "base")  # the registry name the run colorized with
    yield (f"temporal smoothing on `{model}` output, DAVIS reporting set{sets}", _base_figures(s), "")
    if old.get("summary"):
        yield (
            "the same before issue 23 (baseline checkout, same run)",
            _base_figures(old["summary"])
            + f"; clean ground truth PSNR loss {old['summary']['gt_psnr_loss_db']:.2f} dB",
            "",
        )
    tuning = d.get("summary_tuning")
    if tuning:
        was = old.get("summary_tuning")
        extra = f" (before: {_base_figures(was)})" if was else ""
        yield (
            f"temporal smoothing on `{model}` output, DAVIS tuning set ({', '.join(tuning['sequences'])})",
            _base_figures(tuning) + extra,
            "",
        )
    yield ("temporal smoothing on clean ground truth", f"PSNR loss {s['gt_psnr_loss_db']:.2f} dB", "")
    if d.get("speed"):
        yield ("numba smoothing kernel vs numpy", f"{d['speed']['speed_ratio']:.1f}x", "")


def smoothing_model_rows(d: dict[str, Any]) -> Iterator[Row]:
    """The rows of another model's smoothing run (e.g. ``smoothing_base_v2.json``): its colours before and after."""
    model = d.get("colorizer_model", "base")
    s, tuning = d["summary"], d.get("summary_tuning")
    yield (
        f"temporal smoothing on `{model}` output, DAVIS reporting set ({', '.join(s['sequences'])})",
        _base_figures(s),
        "",
    )
    if tuning:
        yield (
            f"temporal smoothing on `{model}` output, DAVIS tuning set ({', '.join(tuning['sequences'])})",
            _base_figures(tuning),
            "",
        )


def deflicker_rows(d: dict[str, Any]) -> Iterator[Row]:
    s, means = d["summary"], d["summary"]["means"]
    named = (d.get("settings") or {}).get("sequences")
    seqs = f" ({', '.join(named)})" if named else ""
    r = s["radius"]
    if s.get("flicker_psnr_gain_db") is not None:
        yield (
            f"deflicker (radius {r}), synthetic flicker at full size on DAVIS",
            f"warp error -{_pct(s['flicker_warp_error_reduction'])}, PSNR {means['flicker']['psnr']:.2f} -> "
            f"{means[f'flicker_deflickered_r{r}']['psnr']:.2f} dB",
            "",
        )
    yield (
        "deflicker of a clip without flicker (ground truth)",
        f"PSNR >= {s['gt_min_psnr_db']:.1f} dB vs input",
        "",
    )
    if "base_warp_error_reduction" in s:
        yield (
            f"deflicker of `{d.get('colorizer_model', 'base')}` colorized per frame, DAVIS" + seqs,
            f"warp error -{_pct(s['base_warp_error_reduction'])}, CDC -{_pct(s['base_cdc_reduction'])}, PSNR "
            f"{s['base_psnr_change_db']:+.2f} dB",
            "",
        )
    sp = d.get("speed")
    if sp:
        yield (
            f"deflicker speed, {sp['size']}, radius {sp['radius']}, working side {sp.get('max_side', 480)} px",
            f"{sp['fps_stream']:.1f} frames/s ({sp['fps_stream_and_420_write']:.1f} with the 4:2:0 chroma write)",
            "",
        )


def deepfake_rows(d: dict[str, Any]) -> Iterator[Row]:
    rule = f", video score {d['aggregate']}" if "aggregate" in d else ""
    absent: list[str] = []
    for name, run in d.get("dfdc", {}).items():
        if not isinstance(
            run, dict
        ):  # "absent": the classifier's or detector's weights were not in the cache
            absent.append(name)
            continue
        n = len(run.get("videos", {}))
        fps = f", {run['fps']:.1f} frames/s" if "fps" in run else ""
        yield (
            f"deepfake, DFDC ({n} clips{rule}), {name}",
            f"accuracy {_pct(run['accuracy'])}, AUC {run['auc']:.2f}{fps}",
            "",
        )
    if absent:
        classifiers = sorted({name.split("/")[-1] for name in absent})
        yield ("deepfake, DFDC, weights absent when measured", ", ".join(classifiers), "")
    fps = d.get("fps_1080p")
    if isinstance(fps, dict):
        for key, value in fps.items():
            if isinstance(value, int | float):
                yield (f"deepfake scoring 1920x1080, {key}", f"{value:.1f} frames/s", "")


def pipeline_rows(d: dict[str, Any]) -> Iterator[Row]:
    inp = d.get("input", {})
    for run in d.get("runs", []):
        if run.get("speedup", 1.0) != 1.0:
            against = f"; {run['vs_baseline']:.2f}x the baseline, same run" if "vs_baseline" in run else ""
            yield (
                f"file transcode {inp.get('width')}x{inp.get('height')}, {run['run']}",
                f"{run['fps']:.2f} frames/s ({run['speedup']:.2f}x the serial loop{against})",
                "",
            )
    size = f"{inp.get('width')}x{inp.get('height')}"
    for key, what in (
        (
            "paired_with_baseline",
            f"file transcode {size}, smoothing r=2 against the baseline, warm processes",
        ),
        (
            "paired_cli_with_baseline",
            f"`chromaflow colorize` {size} --smooth 2 against the baseline, fresh processes",
        ),
    ):
        pairs = d.get(key)
        if pairs:
            medians = (
                f"{statistics.median(pairs['fps_new']):.2f} vs {statistics.median(pairs['fps_baseline']):.2f}"
            )
            yield (
                f"{what}, {pairs['pairs']} runs of each taking turns",
                f"median {pairs['median_ratio']:.2f}x (pairs: {', '.join(f'{r:.2f}x' for r in pairs['ratios'])}; "
                f"median frames/s {medians})",
                "",
            )


def vapoursynth_rows(d: dict[str, Any]) -> Iterator[Row]:
    parts = [f"{r['filter'].split(' (')[0]} {r['overhead']:+.0%}" for r in d.get("rows", [])]
    if parts:
        yield ("VapourSynth filters vs the same engine call (overhead)", ", ".join(parts), "")


def hosts_rows(d: dict[str, Any]) -> Iterator[Row]:
    for path, fps in d.get("fps", {}).items():
        yield (f"colorize 854x480 through the hosts: {path}", f"{fps:.1f} frames/s", "")


def deepfake_engine_rows(d: dict[str, Any]) -> Iterator[Row]:
    width, height = d.get("size", ("?", "?"))
    for r in d.get("rows", []):
        if "frames_per_s" in r:
            yield (
                f"deepfake analysis {width}x{height}, BlazeFace + Meso4, {r['engine']} path, {r['device']}",
                f"{r['frames_per_s']:.1f} frames/s",
                "",
            )


def colour_rows(d: dict[str, Any]) -> Iterator[Row]:
    rates = {(r["op"], r["size"], r["device"]): r["frames_per_s"] for r in d.get("rows", [])}
    for (op, size, device), fused in rates.items():
        eager = rates.get(("join_420_eager", size, device))
        if op == "join_420_fused" and eager:
            yield (
                f"in-gamut join to 8-bit 4:2:0 chroma, {size}, {device}: fused vs eager tensors",
                f"{fused:.1f} vs {eager:.1f} frames/s ({fused / eager:.1f}x)",
                "",
            )


def engine_rows(d: dict[str, Any]) -> Iterator[Row]:
    best: dict[tuple[str, str, str, str], float] = {}
    for r in d.get("rows", []):
        key = (r["path"], r["model"], r["resolution"], r["device"])
        best[key] = max(best.get(key, 0.0), r["frames_per_s"])
    for (path, model, res, device), fps in best.items():
        if path != "host planes":
            yield (
                f"colorize {path}, `{model}` at 256, {res}, {device} (best batch)",
                f"{fps:.1f} frames/s",
                "",
            )


def quality_model_rows(d: dict[str, Any]) -> Iterator[Row]:
    for name, r in d.get("models", {}).items():
        if r.get("weights") == "present":
            yield (
                f"`{name}` on CBSD68 through the engine, side {r['side']}",
                f"{r['psnr']:.2f} dB ({r['psnr_gain_db']:+.2f} dB vs gray), SSIM {r['ssim']:.3f}, colourfulness "
                f"{_pct(r['colorfulness_ratio'])} of ground truth",
                "",
            )


def _best(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The best batch of each (model, device, precision, resolution) among measured rows."""
    best: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        if "frames_per_s" not in r:
            continue
        key = (r["model"], r["device"], r["precision"], r["resolution"])
        if key not in best or r["frames_per_s"] > best[key]["frames_per_s"]:
            best[key] = r
    return best


def model_speed_rows(d: dict[str, Any]) -> Iterator[Row]:
    for (model, device, precision, res), r in _best(d.get("rows", [])).items():
        if res == "1080p":
            random = ", random weights" if r["weights"] == "random" else ""
            memory = f"peak RSS {r['peak_rss_mib']} MiB" + (
                f", device {r['peak_device_mib']} MiB" if r.get("peak_device_mib") else ""
            )
            yield (
                f"colorize `{model}` at its side, 1920x1080, {device} {precision} (best batch{random})",
                f"{r['frames_per_s']:.2f} frames/s, {memory}",
                "",
            )


def models_table(models: dict[str, Any] | None, quality: dict[str, Any] | None) -> list[str]:
    """The README's Models table: one line per colour model, its facts, speed here and quality on CBSD68."""
    if not models:
        return ["(run `benchmarks/models.py` to fill this table)"]
    best = _best(models.get("rows", []))
    scores = (quality or {}).get("models", {})
    gpu = sorted({k[1] for k in best if k[1] != "cpu"})
    head = "| model | architecture | input side | parameters | licence | speed here, 480p (CPU" + (
        f"; {gpu[0]})" if gpu else ")"
    )
    lines = [head + " | quality on CBSD68 | what it is |", "|---|---|---|---|---|---|---|---|"]
    for m in models.get("models", []):
        speeds = []
        for device in ["cpu", *gpu[:1]]:
            found = [r for k, r in best.items() if k[0] == m["model"] and k[1] == device and k[3] == "480p"]
            if found:
                r = max(found, key=lambda r: r["frames_per_s"])
                mark = " (random weights)" if r["weights"] == "random" else ""
                speeds.append(f"{r['frames_per_s']:.2f} frames/s{mark}")
        speed = "; ".join(speeds) or "weights absent"
        q = scores.get(m["model"], {})
        quality_cell = (
            f"{q['psnr']:.2f} dB ({q['psnr_gain_db']:+.2f}), colourfulness {_pct(q['colorfulness_ratio'])}"
            if q.get("weights") == "present"
            else "weights absent"
        )
        lines.append(
            f"| `{m['model']}` | {m['arch']} | {m['input_size']} | {m['parameters_m']:.1f} M | {m['licence']} | "
            f"{speed} | {quality_cell} | {m['description']} |"
        )
    info = models.get("machine")
    load = info.get("load_average") if isinstance(info, dict) else None
    cores = info.get("cores") if isinstance(info, dict) else None
    busy = f" at load average {load[0]:.1f}" if load else ""
    if load and cores and load[0] > cores:
        busy += " (other jobs shared the cores)"
    lines.append("")
    lines.append(
        f"Speed: {machine_of(models)}{busy}, `benchmarks/models.py` (best of batch 1 and 4, Y' planes in, 4:2:0 "
        "chroma out); "
        "quality: `benchmarks/quality.py --model NAME` (PSNR vs the ground truth, gain over the gray input, "
        "colourfulness as a share of the ground truth's)."
    )
    return lines


def stages_table(d: dict[str, Any]) -> list[str]:
    """One line per stage and device: its rate at each resolution, and its peak host (device) memory."""
    resolutions = sorted({r["resolution"] for r in d.get("rows", [])}, key=lambda r: int(r.split("x")[0]))
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in d.get("rows", []):
        if r.get("rate") is None:
            continue
        key = (r["stage"], r["variant"] + (f", batch {r['batch']}" if r.get("batch") else ""), r["device"])
        mem = f"+{r['host_over_baseline_mib']:.0f}" if r.get("host_over_baseline_mib") is not None else "-"
        if r.get("device_peak_mib"):
            mem += f" / {r['device_peak_mib']:.0f}"
        cells.setdefault(key, {})[r["resolution"]] = f"{r['rate']:.1f} {r['unit']} ({mem})"
    head = "| stage | how | device | " + " | ".join(resolutions) + " |"
    lines = [head, "|---" * (3 + len(resolutions)) + "|"]
    for (stage, how, device), by_res in cells.items():
        lines.append(
            f"| {stage} | {how} | {device} | " + " | ".join(by_res.get(r, "-") for r in resolutions) + " |"
        )
    return lines


def roofline_rows(d: dict[str, Any]) -> Iterator[Row]:
    for run in d.get("runs", {}).values():
        for m in run.get("models", []):
            for a in m.get("achieved", []):
                yield (
                    f"roofline `{m['model']}` at {m['side']}, batch {a['batch']:.0f}, {run['machine'].get('device')}",
                    f"{m['gflop_per_frame']:.1f} GFLOP/frame, {a['fps']:.1f} frames/s = {1 / a['gap']:.0%} of its "
                    f"roofline bound ({a['bound_by']}-bound)",
                    "",
                )


# result files written by another script than their name says (``--out``)
SCRIPT_OF = {"smoothing_base_v2": "smoothing", "transfer_papers": "transfer"}

SECTIONS: dict[str, list[tuple[str, Callable[[dict[str, Any]], Iterator[Row]]]]] = {
    "Quality": [
        ("quality", quality_rows),
        ("quality_models", quality_model_rows),
        ("transfer", transfer_rows),
        ("transfer", transfer_sequence_rows),
        ("transfer_papers", transfer_papers_rows),
        ("transfer_flow", transfer_flow_rows),
        ("transfer_ceilings", transfer_ceilings_rows),
        ("smoothing", smoothing_rows),
        ("smoothing_base_v2", smoothing_model_rows),
        ("deflicker", deflicker_rows),
        ("deepfake", deepfake_rows),
    ],
    "Speed": [
        ("engine", engine_rows),
        ("models", model_speed_rows),
        ("colour", colour_rows),
        ("pipeline", pipeline_rows),
        ("hosts", hosts_rows),
        ("deepfake_engines", deepfake_engine_rows),
        ("vs_filters", vapoursynth_rows),
        ("roofline", roofline_rows),
    ],
}


def render(results: Path = RESULTS) -> str:
    """The markdown block (without the markers) for the results in ``results``."""
    out = [
        "Generated by `make readme-perf` (`tools/perf_table.py`) from `benchmarks/results/*.json`; the machine "
        "column names where each figure was measured.",
        "",
    ]
    for title, sources in SECTIONS.items():
        out += [f"**{title}**", "", "| what | figure | machine | script |", "|---|---|---|---|"]
        for name, rows_of in sources:
            path = results / f"{name}.json"
            if not path.is_file():
                continue
            data = json.loads(path.read_text())
            machine = machine_of(data)
            for what, figure, _ in rows_of(data):
                script = SCRIPT_OF.get(name, name)
                out.append(f"| {what} | {figure} | {machine} | `benchmarks/{script}.py` |")
        out.append("")
    stages = results / "stages.json"
    if stages.is_file():
        data = json.loads(stages.read_text())
        out += [
            f"**Per stage** ({machine_of(data)}, `benchmarks/stages.py`; in brackets: peak host memory over the "
            "baseline in MiB / peak device memory)",
            "",
            *stages_table(data),
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def render_models(results: Path = RESULTS) -> str:
    """The markdown of the Models table (without its markers) from models.json and quality_models.json."""

    def read(name: str) -> dict[str, Any] | None:
        path = results / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    return "\n".join(models_table(read("models"), read("quality_models"))) + "\n"


def splice(readme: str, block: str, start: str = START, end: str = END) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md lacks the {start} / {end} markers")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def regenerated(readme: str, results: Path) -> str:
    """``readme`` with every generated block made from ``results`` (the Models table where it has markers)."""
    text = splice(readme, render(results))
    if MODELS_START in text:
        text = splice(text, render_models(results), MODELS_START, MODELS_END)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not up to date")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    current = args.readme.read_text()
    wanted = regenerated(current, args.results)
    if args.check:
        if wanted != current:
            print("README.md's performance table is stale: run `make readme-perf`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
