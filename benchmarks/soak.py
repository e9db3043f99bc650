"""Soak: a long run through the PyAV ``ColorizeNode`` and the VapourSynth ``colorize``, memory every 1,000 frames.

Both hosts colour the same synthetic clip with the bundled ``base`` model, temporal smoothing (radius 2, the
default) and a reference keyframe at frame 0 (``transfer="auto"``), so the model, the keyframe propagation, the
scene-cut detector, the optical flow and the smoothing kernel all run on every frame. The clip is small (96x64
Y'CbCr 4:2:0 by default) and loops over four 60-frame shots of different colours (a scene cut every 60 frames),
so 20,000 frames finish on a CPU; a decoder's frame is imitated by a new ``av.VideoFrame`` per frame.

Every ``--every`` frames (1,000) each run records the resident memory (RSS) and the memory Python's allocator
traced (``tracemalloc``, which numpy reports its arrays to; ``--no-tracemalloc`` skips it, 10-40 % faster). The figure of merit is the **slope**: a least-squares line through the second
half of the RSS samples, in MiB per 1,000 frames (the first half lets caches and pools fill). A leak of one
96x64 float32 Lab frame per frame (74 KiB) would show as about 72 MiB per 1,000 frames.

Writes a table to stdout and JSON to ``benchmarks/results/soak.json``.

    python benchmarks/soak.py [--frames 20000] [--every 1000] [--hosts pyav,vapoursynth] [--no-tracemalloc]
                              [--quick]
"""

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # generated test media: tests/support
from support.pyav_synth import synth_rgb  # noqa: E402

sys.path.append(str(HERE))
from _harness import current_rss, describe_machine, machine, release_freed_memory  # noqa: E402

RESULTS = HERE / "results" / "soak.json"
MIB = 1024 * 1024
SHOT = 60  # frames per shot of the looping clip
SHOTS = 4
HOSTS = ("pyav", "vapoursynth")


# ------------------------------------------------------------------------------------------------ the clip


class Clip:
    """The looping clip: ``SHOTS`` shots of ``SHOT`` frames, each shot its own colour field with a moving square.
    Planes are computed once; every request builds new frames from them."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rgb = [synth_rgb(width, height, i % SHOT, seed=i // SHOT) for i in range(SHOT * SHOTS)]
        self.yuv = [
            av.VideoFrame.from_ndarray(rgb, format="rgb24")
            .reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            .to_ndarray()
            for rgb in self.rgb
        ]

    def planes(self, n: int) -> np.ndarray:
        """Frame ``n``'s yuv420p planes as one (H * 3 / 2, W) array."""
        return self.yuv[n % len(self.yuv)]

    def frame(self, n: int) -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(self.planes(n), format="yuv420p")
        frame.colorspace, frame.color_range = 1, 1
        frame.pts, frame.time_base = n, Fraction(1, 25)
        return frame

    @property
    def reference(self) -> np.ndarray:
        """Frame 0 in colour: the keyframe."""
        return self.rgb[0]


# ------------------------------------------------------------------------------------------------ sampling


class Recorder:
    """Memory samples every ``every`` frames: frames done, seconds, RSS (MiB), traced Python memory (MiB)."""

    def __init__(
        self, every: int, trace: bool, on_sample: Callable[[list[dict[str, float]]], None] | None = None
    ) -> None:
        self.every = every
        self.trace = trace
        self.on_sample = on_sample  # called with the samples so far after each one (a killed run keeps them)
        self.samples: list[dict[str, float]] = []
        self._start = time.perf_counter()

    def start(self) -> None:
        release_freed_memory()
        if self.trace:
            tracemalloc.start()
        self._start = time.perf_counter()
        self.sample(0)

    def sample(self, frames: int) -> None:
        rss = current_rss()
        row: dict[str, float] = {
            "frames": frames,
            "seconds": round(time.perf_counter() - self._start, 2),
            "rss_mib": round(rss / MIB, 2) if rss is not None else float("nan"),
        }
        if self.trace:
            row["traced_mib"] = round(tracemalloc.get_traced_memory()[0] / MIB, 2)
        # Freed C-heap pages the allocator keeps are resident but not held by anything: trimmed RSS tells a leak
        # (it keeps growing) from heap growth the next allocations reuse.
        release_freed_memory()
        trimmed = current_rss()
        row["rss_trimmed_mib"] = round(trimmed / MIB, 2) if trimmed is not None else float("nan")
        self.samples.append(row)
        if self.on_sample is not None:
            self.on_sample(self.samples)

    def count(self, frames: int) -> None:
        """Call after each frame (``frames`` = frames done so far)."""
        if frames % self.every == 0:
            self.sample(frames)
            last = self.samples[-1]
            print(
                f"  {frames:>7,d} frames  {last['seconds']:8.1f} s  RSS {last['rss_mib']:8.1f} MiB",
                file=sys.stderr,
                flush=True,
            )

    def stop(self) -> None:
        if self.trace:
            tracemalloc.stop()


def slope(samples: list[dict[str, float]], key: str = "rss_mib") -> float | None:
    """MiB per 1,000 frames: a least-squares line through the second half of the samples (None: under 3 points)."""
    half = [s for s in samples if s["frames"] >= samples[-1]["frames"] / 2 and key in s]
    if len(half) < 3:
        return None
    x = np.array([s["frames"] / 1000 for s in half])
    y = np.array([s[key] for s in half])
    return float(np.polyfit(x, y, 1)[0])


# ------------------------------------------------------------------------------------------------ hosts


def run_pyav(
    clip: Clip, frames: int, rec: Recorder, colorizer: Any, smooth: int, batch: int
) -> dict[str, Any]:
    from chromaflow.filters.pyav import ColorizeNode

    node = ColorizeNode(colorizer, references={0: clip.reference}, smooth=smooth, batch_size=batch)
    done = 0
    rec.start()
    for n in range(frames):
        node.push(clip.frame(n))
        for _ in node.pull():
            done += 1
            rec.count(done)
    for _ in node.flush():
        done += 1
        rec.count(done)
    return {"frames_out": done}


def run_vapoursynth(
    clip: Clip, frames: int, rec: Recorder, colorizer: Any, smooth: int, batch: int
) -> dict[str, Any]:
    import vapoursynth as vs

    from chromaflow.filters import vapoursynth as cf

    core = vs.core
    blank = core.std.BlankClip(format=vs.YUV420P8, width=clip.width, height=clip.height, length=frames)
    h = clip.height

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        planes = clip.planes(n)
        np.asarray(g[0])[...] = planes[:h]
        chroma = planes[h:].reshape(2, h // 2, clip.width // 2)
        np.asarray(g[1])[...] = chroma[0]
        np.asarray(g[2])[...] = chroma[1]
        g.props["_Matrix"] = 1  # BT.709, as the PyAV frames are tagged; no range property: limited
        return g

    src = core.std.ModifyFrame(blank, blank, fill)
    out = cf.colorize(src, model=colorizer, references={0: clip.reference}, smooth=smooth, batch=batch)
    rec.start()
    for n in range(out.num_frames):
        out.get_frame(n)
        rec.count(n + 1)
    return {"frames_out": out.num_frames, "vapoursynth": f"R{core.core_version.release_major}"}


def _available(host: str) -> str | None:
    """None when ``host`` can run here, else why not."""
    if host != "vapoursynth":
        return None
    try:
        import vapoursynth  # noqa: F401
    except ImportError:
        return "VapourSynth is not installed"
    return None


# ------------------------------------------------------------------------------------------------ main


def soak(
    host: str,
    clip: Clip,
    frames: int,
    rec: Recorder,
    colorizer: Any,
    smooth: int,
    batch: int,
) -> dict[str, Any]:
    run: Callable[..., dict[str, Any]] = run_pyav if host == "pyav" else run_vapoursynth
    try:
        facts = run(clip, frames, rec, colorizer, smooth, batch)
    finally:
        rec.stop()
    if rec.samples[-1]["frames"] != facts["frames_out"]:
        rec.sample(facts["frames_out"])
    return summary(rec.samples, rec.trace) | facts | {"complete": True}


def summary(samples: list[dict[str, float]], trace: bool) -> dict[str, Any]:
    """A run's figures from its samples (so far)."""
    seconds = samples[-1]["seconds"]
    rss = [s["rss_mib"] for s in samples]
    done = int(samples[-1]["frames"])
    return {
        "frames_out": done,
        "seconds": seconds,
        "fps": round(done / seconds, 2) if seconds else None,
        "rss_start_mib": rss[0],
        "rss_end_mib": rss[-1],
        "rss_max_mib": max(rss),
        "slope_mib_per_1000_frames": _round(slope(samples)),
        "trimmed_slope_mib_per_1000_frames": _round(slope(samples, "rss_trimmed_mib")),
        "traced_slope_mib_per_1000_frames": _round(slope(samples, "traced_mib")) if trace else None,
        "samples": samples,
        "complete": False,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def table(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"soak: {s['frames']:,d} frames {s['width']}x{s['height']}, model {s['model']} at {s['size']}, smooth "
        f"{s['smooth']}, keyframe at 0 ({describe_machine(result['machine'])})",
        f"{'host':12s} {'frames':>7s} {'seconds':>8s} {'f/s':>7s} {'RSS start':>10s} {'RSS end':>8s} "
        f"{'RSS max':>8s} {'slope MiB/1k':>13s} {'trimmed slope':>14s} {'traced slope':>13s}",
    ]
    for host, r in result["runs"].items():
        if "skipped" in r:
            lines.append(f"{host:12s} skipped: {r['skipped']}")
            continue
        keys = (
            "slope_mib_per_1000_frames",
            "trimmed_slope_mib_per_1000_frames",
            "traced_slope_mib_per_1000_frames",
        )
        rss_slope, trimmed_slope, traced_slope = ("n/a" if r.get(k) is None else f"{r[k]:+.3f}" for k in keys)
        lines.append(
            f"{host:12s} {r['frames_out']:7d} {r['seconds']:8.1f} {r['fps']:7.1f} {r['rss_start_mib']:10.1f} "
            f"{r['rss_end_mib']:8.1f} {r['rss_max_mib']:8.1f} {rss_slope:>13s} {trimmed_slope:>14s} {traced_slope:>13s}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000, help="frames per host (default 20,000)")
    ap.add_argument(
        "--every", type=int, default=1000, help="memory sample interval in frames (default 1,000)"
    )
    ap.add_argument("--hosts", default=",".join(HOSTS), help="comma-separated: pyav, vapoursynth")
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="model input side (default 64: small frames)")
    ap.add_argument("--smooth", type=int, default=2, help="temporal smoothing radius (default 2)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--tracemalloc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also sample the memory Python's allocator traced (numpy arrays included; 10-40%% slower; default on)",
    )
    ap.add_argument("--quick", action="store_true", help="2,000 frames, a sample every 200")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.every = 2000, 200
    hosts = [h for h in args.hosts.split(",") if h]
    if set(hosts) - set(HOSTS) or args.frames < 1 or args.every < 1:
        ap.error(f"--hosts takes {', '.join(HOSTS)}; --frames and --every take whole numbers >= 1")

    from chromaflow.core import registry
    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.nets.base import build_base

    torch.manual_seed(0)
    if registry.is_present("base"):
        colorizer, model = Colorizer("base", device=args.device, size=args.size), "base"
    else:  # same architecture and cost; the trained weights are not needed to watch memory
        colorizer, model = Colorizer(build_base().eval(), device=args.device, size=args.size), "base (random)"
    clip = Clip(args.width, args.height)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "hosts")}
    info = machine()
    runs: dict[str, Any] = {}

    def save(partial: dict[str, Any] | None = None) -> dict[str, Any]:
        result = {
            "machine": info,
            "settings": settings | {"model": model, "hosts": hosts},
            "runs": runs | (partial or {}),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(args.output)
        return result

    for host in hosts:
        why = _available(host)
        if why is not None:
            runs[host] = {"skipped": why}
            continue
        print(f"{host}: {args.frames:,d} frames", file=sys.stderr, flush=True)
        rec = Recorder(
            args.every, args.tracemalloc, lambda s, h=host: save({h: summary(s, args.tracemalloc)})
        )
        runs[host] = soak(host, clip, args.frames, rec, colorizer, args.smooth, args.batch)
    print(table(save()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
