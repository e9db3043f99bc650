"""Fuzz: seeded bad media (``support/fuzz_media.py``) through every verb, the PyAV nodes and the VapourSynth filters.

Each case asserts what the project promises for bad input (issue 16): a documented exit code (2 usage, 3 bad input,
6 output cannot be written; in the library a ChromaflowError, in VapourSynth a ``vs.Error``) or a correct result
(every frame, at its size, luma kept where the format allows, timestamps kept); no traceback; no file left under a
final or temporary name after a failure; the inputs unchanged (hashed before and after). Cases run through
``main(argv)`` and the hosts' own functions in one worker process (``support/fuzz_runner.py``: a crash in native
code fails its case, not the session); a handful run as real ``chromaflow`` processes.

``CHROMAFLOW_FUZZ_REPORT=report.json`` writes every case's outcome to that file (the README's reliability figures).
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import pytest
import torch

from chromaflow.core.nets.base import BaseColorNet

from support.fuzz_media import (
    BAD_INPUT,
    OK,
    SEED,
    Medium,
    Recipe,
    image_recipes,
    pixel_format_recipes,
    video_recipes,
)
from support.fuzz_runner import VS_PRESETS, VS_PROPS, VS_SIZES, Reply, Worker, luma_kept, node_cases

OUTCOMES: list[dict[str, Any]] = []
PARTIAL_MARKERS = ("chromaflow-partial", ".part", ".tmp")


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """Writes every case's outcome to ``$CHROMAFLOW_FUZZ_REPORT`` when set (nothing otherwise)."""
    yield
    target = os.environ.get("CHROMAFLOW_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps(summarise(OUTCOMES), indent=1))


def summarise(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts (tried, handled, by category and host) and every failing case."""
    by: dict[str, Counter[str]] = {}
    for o in outcomes:
        for key in (f"category:{o['category']}", f"host:{o['host']}"):
            by.setdefault(key, Counter())["tried"] += 1
            by[key]["handled" if o["ok"] else "mishandled"] += 1
            by[key][f"result:{o['result']}"] += 1
    return {
        "seed": SEED,
        "tried": len(outcomes),
        "handled": sum(o["ok"] for o in outcomes),
        "by": {k: dict(v) for k, v in sorted(by.items())},
        "failures": [o for o in outcomes if not o["ok"]],
        "cases": [{k: o[k] for k in ("id", "category", "host", "result", "ok")} for o in outcomes],
    }


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """chromaflow's ``base`` architecture, narrow (width 8) with seeded random weights: real code paths, tiny cost."""
    torch.manual_seed(SEED)
    path = tmp_path_factory.mktemp("fuzz-model") / "tiny.pt"
    torch.save({"arch": "base", "state_dict": BaseColorNet(width=8).state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def meso4(shared: Path) -> Path:
    path = shared / "models/mesonet/Meso4_DF.h5"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A model cache for the CLI cases, holding the shared MesoNet weights when they are there (imported once)."""
    from chromaflow.core import registry

    home = tmp_path_factory.mktemp("fuzz-home")
    try:
        meso4 = request.getfixturevalue("meso4")
    except pytest.skip.Exception:
        return home  # the deepfake cases skip on their own
    previous = os.environ.get("CHROMAFLOW_HOME")
    os.environ["CHROMAFLOW_HOME"] = str(home)
    try:
        registry.import_file("meso4-df", meso4)
    finally:
        if previous is None:
            del os.environ["CHROMAFLOW_HOME"]
        else:
            os.environ["CHROMAFLOW_HOME"] = previous
    return home


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """The process the cases run in (a crash fails one case, not the session; see support/fuzz_runner.py)."""
    w = Worker()
    yield w
    w.close()


def from_reply(reply: Reply) -> tuple[str, list[str], str]:
    """(result, problems, detail) of a node or VapourSynth case from the worker's reply."""
    if reply.status == "ok":
        return reply.value["result"], list(reply.value["problems"]), reply.value["detail"] + reply.stderr
    if reply.status == "crashed":
        return str(reply.value), [f"the process died ({reply.value})"], reply.stderr
    return reply.status, [f"{reply.status}: {reply.value}"], reply.stderr


# ------------------------------------------------------------------------------------------------ helpers


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (SHA-256) and folder under ``folder``, by relative path."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def partials(folder: Path) -> list[str]:
    """Names under ``folder`` that look like a temporary or partial output."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if any(m in p.name for m in PARTIAL_MARKERS)
    )


def record(
    case_id: str, category: str, host: str, result: str, problems: list[str], detail: str = ""
) -> None:
    OUTCOMES.append(
        {
            "id": case_id,
            "category": category,
            "host": host,
            "result": result,
            "ok": not problems,
            "problems": problems,
            "detail": detail[-3000:],
        }
    )


def verdict(case_id: str, category: str, host: str, result: str, problems: list[str], detail: str) -> None:
    record(case_id, category, host, result, problems, detail)
    assert not problems, f"{case_id} [{host}]: {'; '.join(problems)}\n--- what it said ---\n{detail[-3000:]}"


def decode(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


# ------------------------------------------------------------------------------------------------ CLI cases


@dataclass(frozen=True)
class CliCase:
    id: str
    recipe: Recipe
    verb: str
    options: tuple[str, ...] = ()
    out: str | None = None  # OUT relative to the output folder (default: the verb's)
    exit_codes: frozenset[int] | None = None  # instead of the recipe's

    @property
    def category(self) -> str:
        return "output" if self.out is not None else self.recipe.category


VIDEO_VERBS = ("colorize", "deflicker", "deepfake")


def cli_cases() -> list[CliCase]:
    cases: list[CliCase] = []
    rng = random.Random(f"{SEED}-verbs")
    by_name: dict[str, Recipe] = {}
    for k, recipe in enumerate(video_recipes()):
        by_name[recipe.name] = recipe
        # colorize takes every input; deflicker and deepfake take turns (all three for the few VFR inputs)
        verbs = VIDEO_VERBS if recipe.category == "vfr" else ("colorize", VIDEO_VERBS[1 + k % 2])
        cases += [CliCase(f"{verb}-{recipe.name}", recipe, verb) for verb in verbs]
        if recipe.category == "vfr" or (recipe.category == "truncated" and recipe.name.startswith("y4m")):
            cases.append(CliCase(f"colorize-strict-{recipe.name}", recipe, "colorize", ("--strict",)))
    pixfmt = pixel_format_recipes()
    for recipe in pixfmt:
        cases.append(CliCase(f"colorize-{recipe.name}", recipe, "colorize", ("--codec", "ffv1")))
    for verb, count in (("deflicker", 8), ("deepfake", 4)):
        for recipe in rng.sample(pixfmt, min(count, len(pixfmt))):
            cases.append(CliCase(f"{verb}-{recipe.name}", recipe, verb, ("--codec", "ffv1")))
    for recipe in image_recipes():
        cases.append(CliCase(f"image-{recipe.name}", recipe, "image"))
    valid = by_name["mp4-named-mkv"]
    damaged = by_name[
        next(n for n in by_name if n.startswith("mkv-ffv1-cut") and int(n.split("cut")[1]) > 1000)
    ]
    png = next(r for r in image_recipes() if r.name == "img-png-rgb24")
    cases += [
        CliCase("colorize-out-unknown-extension", valid, "colorize", out="o.xyz", exit_codes=frozenset({2})),
        CliCase(
            "colorize-out-missing-folder", valid, "colorize", out="missing/o.mkv", exit_codes=frozenset({6})
        ),
        CliCase("deflicker-out-no-extension", valid, "deflicker", out="o", exit_codes=frozenset({2})),
        CliCase(
            "deepfake-scores-missing-folder",
            valid,
            "deepfake",
            ("--scores", "{out}/missing/s.jsonl"),
            out="o.mkv",
            exit_codes=frozenset({6}),
        ),
        CliCase("colorize-out-sequence", valid, "colorize", out="%03d.png", exit_codes=OK),
        CliCase(f"colorize-out-sequence-{damaged.name}", damaged, "colorize", out="%03d.png"),
        CliCase("image-out-unknown-extension", png, "image", out="o.xyz", exit_codes=frozenset({2})),
        CliCase(
            "image-max-pixels-1000", png, "image", ("--max-pixels", "1000"), out="o.png", exit_codes=BAD_INPUT
        ),
    ]
    return cases


CLI_CASES = cli_cases()


def argv_for(case: CliCase, arg: str, out_dir: Path, model: str) -> list[str]:
    default = {"image": "" if not Path(arg).suffix else "o.png"}.get(case.verb, "o.mkv")
    out = str(out_dir / (case.out if case.out is not None else default))
    options = [o.replace("{out}", str(out_dir)) for o in case.options]
    if case.verb == "colorize":
        return ["colorize", arg, out, "--model", model, "--size", "32", "--smooth", "1", "--batch", "4",
                "--device", "cpu", "--quiet", *options]  # fmt: skip
    if case.verb == "deflicker":
        return ["deflicker", arg, out, "--quiet", *options]
    if case.verb == "deepfake":
        sidecars = [] if "--scores" in options else ["--scores", str(out_dir / "s.jsonl")]
        return ["deepfake", arg, out, *sidecars, "--vtt", str(out_dir / "s.vtt"), "--device", "cpu", "--quiet",
                *options]  # fmt: skip
    return ["image", arg, out, "--model", model, "--size", "32", "--device", "cpu", *options]


def check_video_result(
    case: CliCase, medium: Medium, path: Path, err: str, problems: list[str], src: str
) -> None:
    try:
        frames = decode(path)
    except (av.error.FFmpegError, IndexError) as exc:
        problems.append(f"exit 0 but {path.name} does not decode: {exc}")
        return
    if not frames:
        problems.append(f"exit 0 but {path.name} holds no frame")
    if medium.frames is not None and len(frames) != medium.frames:
        problems.append(f"exit 0 with {len(frames)} frames of the {medium.frames} the input holds")
    if medium.size is not None and any((f.width, f.height) != medium.size for f in frames):
        problems.append(
            f"frame size {frames[0].width}x{frames[0].height}, input {medium.size[0]}x{medium.size[1]}"
        )
    if medium.times is not None and len(frames) == len(medium.times):
        got = [round(float(f.time) - float(frames[0].time), 3) for f in frames if f.time is not None]
        if got != list(medium.times):
            problems.append(f"frame times {got}, input {list(medium.times)}")
    if medium.cut_mid_frame and "warning" not in err.lower():
        problems.append("a y4m stream cut inside a frame was accepted without a warning")
    if case.category == "pixfmt" and case.verb in ("colorize", "deflicker") and frames:
        source = decode(Path(src))
        kept = [luma_kept(a, b) for a, b in zip(source, frames, strict=False)]
        if False in kept:
            problems.append(f"luma changed ({source[0].format.name} -> {frames[0].format.name})")


def check_success(case: CliCase, medium: Medium, out_dir: Path, err: str, src: str) -> list[str]:
    problems: list[str] = []
    names = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    if case.verb == "image":
        expected = ["o.png"] if Path(src).suffix else sorted(Path(p).name for p in medium.files)
        if names != expected:
            return [f"exit 0 but the output folder holds {names}, expected {expected}"]
        for name in names:
            image = cv2.imread(str(out_dir / name), cv2.IMREAD_UNCHANGED)
            if image is None or (medium.size is not None and image.shape[1::-1] != medium.size):
                problems.append(f"{name}: {None if image is None else image.shape}, input {medium.size}")
        return problems
    if case.out == "%03d.png":
        count = medium.frames or len(names)
        if names != [f"{i:03d}.png" for i in range(1, count + 1)]:
            problems.append(f"exit 0 but the sequence output holds {names}")
        return problems
    expected = ["o.mkv"] + (["s.jsonl", "s.vtt"] if case.verb == "deepfake" else [])
    if names != expected:
        return [f"exit 0 but the output folder holds {names}, expected {expected}"]
    check_video_result(case, medium, out_dir / "o.mkv", err, problems, src)
    if case.verb == "deepfake":
        lines = [json.loads(line) for line in (out_dir / "s.jsonl").read_text().splitlines()]
        if not lines or "video" not in lines[-1]:
            problems.append("s.jsonl has no closing video line")
        elif len(lines) - 1 != len(decode(out_dir / "o.mkv")):
            problems.append(f"s.jsonl scores {len(lines) - 1} frames, the overlay video holds others")
        if not (out_dir / "s.vtt").read_text().startswith("WEBVTT"):
            problems.append("s.vtt is no WebVTT file")
    return problems


def check_failure(case: CliCase, out_dir: Path) -> list[str]:
    left = [p for p in sorted(out_dir.rglob("*")) if p.is_file() or any(p.iterdir())]
    if case.verb == "image" and case.recipe.name == "folder-one-damaged":
        # finished results of the readable images may stay; nothing half-written may
        left = [p for p in left if cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is None]
    return [f"failed run left {[str(p.relative_to(out_dir)) for p in left]}"] if left else []


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli(
    case: CliCase,
    tmp_path: Path,
    tiny_model: str,
    fuzz_home: Path,
    worker: Worker,
    request: pytest.FixtureRequest,
) -> None:
    if case.verb == "deepfake":
        request.getfixturevalue("meso4")  # skips without the shared MesoNet weights
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    medium = case.recipe.build()
    src = medium.write(src_dir)
    before = snapshot(src_dir)
    argv = argv_for(case, src, out_dir, tiny_model)
    reply = worker.call(
        "run_cli", argv, {"CHROMAFLOW_HOME": str(fuzz_home)}, stderr_path=tmp_path / "stderr.txt"
    )
    code, err = (reply.value if reply.status == "ok" else reply.status), reply.stderr
    allowed = case.exit_codes or case.recipe.exit_codes
    if "--strict" in case.options and medium.cut_mid_frame:
        allowed = BAD_INPUT
    problems = []
    if reply.status == "crashed":
        problems.append(f"the process died ({reply.value})")
    elif reply.status != "ok":
        problems.append(f"{reply.status}: {reply.value}")
    elif code == "uncaught":
        problems.append("uncaught exception (a traceback, exit 1)")
    elif int(code) not in allowed:
        problems.append(f"exit {code}, expected one of {sorted(allowed)}")
    if "Traceback" in err and code != "uncaught":
        problems.append("traceback on stderr")
    if snapshot(src_dir) != before:
        problems.append("the input was changed")
    if left := partials(tmp_path):
        problems.append(f"temporary files left: {left}")
    if code == "0":
        problems += check_success(case, medium, out_dir, err, src)
    elif code.isdigit():
        problems += check_failure(case, out_dir)
    detail = f"$ chromaflow {' '.join(argv)}\nexit {code}\n{err}"
    verdict(case.id, case.category, f"cli:{case.verb}", str(reply.value) if reply.status == "crashed" else code,
            problems, detail)  # fmt: skip


# ------------------------------------------------------------------------------------------------ real processes

PROCESS_CASES: list[tuple[str, str, list[str], frozenset[int]]] = [
    # (case id, recipe name, argv with {in} {out} {model}, allowed exit codes)
    ("colorize-y4m-pipe", "y4m-W99999-H99999", ["colorize", "-", "-", "--model", "{model}", "--size", "32"],
     BAD_INPUT),
    ("deflicker-file", "vfr-webm", ["deflicker", "{in}", "{out}/o.mkv"], OK),
    ("image-huge-header", "png-claims-100000x100000", ["image", "{in}", "{out}/o.png", "--model", "{model}"],
     BAD_INPUT),
]  # fmt: skip


@pytest.fixture(scope="module")
def process_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, dict[str, Any]]:
    """The real-process cases, started together (each pays the interpreter's start-up; two at a time overlap)."""
    recipes = {r.name: r for r in [*video_recipes(), *image_recipes()]}
    runs: dict[str, dict[str, Any]] = {}
    procs = []
    for case_id, name, template, _ in PROCESS_CASES:
        root = tmp_path_factory.mktemp(f"proc-{case_id}")
        (root / "in").mkdir()
        (root / "out").mkdir()
        medium = recipes[name].build()
        src = medium.write(root / "in")
        argv = [a.format(**{"in": src, "out": root / "out", "model": tiny_model}) for a in template]
        stdin = Path(src).read_bytes() if "-" in argv[1:2] else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "chromaflow.plugins.cli.main", *argv],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        runs[case_id] = {"root": root, "before": snapshot(root / "in"), "argv": argv}
        procs.append((case_id, proc, stdin))
    for case_id, proc, stdin in procs:
        out, err = proc.communicate(stdin, timeout=300)
        runs[case_id] |= {"code": proc.returncode, "stdout": out, "stderr": err.decode(errors="replace")}
    return runs


@pytest.mark.parametrize(
    ("case_id", "allowed"), [(c[0], c[3]) for c in PROCESS_CASES], ids=[c[0] for c in PROCESS_CASES]
)
def test_cli_process(case_id: str, allowed: frozenset[int], process_runs: dict[str, dict[str, Any]]) -> None:
    run = process_runs[case_id]
    root: Path = run["root"]
    problems = []
    if run["code"] not in allowed:
        problems.append(f"exit {run['code']}, expected one of {sorted(allowed)}")
    if "Traceback" in run["stderr"]:
        problems.append("traceback on stderr")
    if snapshot(root / "in") != run["before"]:
        problems.append("the input was changed")
    if left := partials(root):
        problems.append(f"temporary files left: {left}")
    if run["code"] != 0 and (left := sorted(p.name for p in (root / "out").iterdir())):
        problems.append(f"failed run left {left}")
    if run["code"] != 0 and run["argv"][2] == "-" and run["stdout"]:
        problems.append(f"failed run wrote {len(run['stdout'])} bytes to stdout")
    detail = f"$ chromaflow {' '.join(run['argv'])}\nexit {run['code']}\n{run['stderr']}"
    verdict(f"process-{case_id}", "process", "cli:process", str(run["code"]), problems, detail)


# ------------------------------------------------------------------------------------------------ PyAV nodes

NODE_CASES = node_cases()


@pytest.mark.parametrize(
    ("node", "stream", "category"), NODE_CASES, ids=[f"{n}-{s}" for n, s, _ in NODE_CASES]
)
def test_node(
    node: str, stream: str, category: str, worker: Worker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    meso4 = str(request.getfixturevalue("meso4")) if node == "DeepfakeNode" else None
    reply = worker.call("run_node", node, stream, meso4, stderr_path=tmp_path / "stderr.txt")
    result, problems, detail = from_reply(reply)
    verdict(f"{node}-{stream}", category, f"pyav:{node}", result, problems, detail)


# ------------------------------------------------------------------------------------------------ VapourSynth


def vs_cases() -> list[tuple[str, str, str]]:
    """(filter, input, category): every preset format through colorize (seeded samples through deflicker,
    deepfake and transfer), odd frame properties and tiny sizes, and part of the video corpus read by BestSource."""
    rng = random.Random(f"{SEED}-vs")
    out = [("colorize", f"fmt-{p}", "pixfmt") for p in VS_PRESETS]
    out += [("deflicker", f"fmt-{p}", "pixfmt") for p in rng.sample(VS_PRESETS, 16)]
    out += [("deepfake", f"fmt-{p}", "pixfmt") for p in rng.sample(VS_PRESETS, 6)]
    out += [("transfer", f"fmt-{p}", "pixfmt") for p in rng.sample(VS_PRESETS, 8)]
    out += [("transfer", f"size-{p}-{w}x{h}", "dimensions") for p, w, h in rng.sample(VS_SIZES, 4)]
    for k, (key, value) in enumerate(VS_PROPS):
        second = ("deflicker", "deepfake")[k % 2] if key == "_Matrix" else "deflicker"
        filters = ("colorize", second) if k % 2 == 0 or key == "_Matrix" else ("colorize",)
        out += [(f, f"prop-{key}={value}", "properties") for f in filters]
    out += [(f, f"size-{p}-{w}x{h}", "dimensions") for f in ("colorize", "deflicker") for p, w, h in VS_SIZES]
    out += [(f, "length-1", "dimensions") for f in ("colorize", "deflicker")]
    recipes = [r for r in video_recipes() if r.category != "sequence"]
    damaged = [r for r in recipes if r.category in ("truncated", "corrupted")]
    picked = rng.sample(damaged, 12) + [r for r in recipes if r not in damaged]
    for recipe in picked:
        filters = ("colorize", "deflicker") if recipe.category in ("vfr", "dimensions") else ("colorize",)
        out += [(f, f"bs-{recipe.name}", recipe.category) for f in filters]
    return out


VS_CASES = vs_cases()


@pytest.mark.parametrize(("kind", "source", "category"), VS_CASES, ids=[f"{k}-{s}" for k, s, _ in VS_CASES])
def test_vapoursynth(
    kind: str, source: str, category: str, worker: Worker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    vs = pytest.importorskip("vapoursynth")
    meso4 = str(request.getfixturevalue("meso4")) if kind == "deepfake" else None
    folder = tmp_path / "in"
    folder.mkdir()
    path = None
    if source.startswith("bs-"):  # a file of the corpus read by a real source filter
        if not hasattr(vs.core, "bs"):
            pytest.skip("the BestSource plugin is not installed (pip install vapoursynth-bestsource)")
        path = next(r for r in video_recipes() if r.name == source[3:]).build().write(folder)
    before = snapshot(folder)
    reply = worker.call("run_vapoursynth", kind, source, path, meso4, stderr_path=tmp_path / "stderr.txt")
    result, problems, detail = from_reply(reply)
    if snapshot(folder) != before:
        problems.append("the input folder changed (a file edited, or something written next to it)")
    verdict(f"vs-{kind}-{source}", category, f"vapoursynth:{kind}", result, problems, detail)


# ------------------------------------------------------------------------------------------------ the harness


def test_worker_turns_a_crash_and_a_hang_into_one_failed_call(tmp_path: Path) -> None:
    """The harness itself: a segfault or a hang fails its own call; the next call gets a fresh worker."""
    w = Worker(timeout=3)
    try:
        assert w.call("pause", 0, stderr_path=tmp_path / "a.txt").status == "ok"
        crashed = w.call("crash", signal.SIGSEGV, stderr_path=tmp_path / "b.txt")
        assert (crashed.status, crashed.value) == ("crashed", "SIGSEGV")
        assert "Fatal Python error: Segmentation fault" in crashed.stderr
        assert w.call("pause", 30, stderr_path=tmp_path / "c.txt").status == "timeout"
        assert w.call("pause", 0, stderr_path=tmp_path / "d.txt").value == 0
        assert w.restarts == 2
    finally:
        w.close()
