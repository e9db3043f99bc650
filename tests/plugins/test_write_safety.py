"""Nothing a command writes may destroy an input or another output, and an output that cannot be written is
refused before any work (issue 16).

Every case runs the real command line in-process on real files. Where the model a case names is absent
(``--model siggraph17`` is never downloaded here), a refusal with exit 6 or 2 instead of 4 shows that the check
came before any work: the model is the first heavy thing a run loads.
"""

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.nets.base import build_base
from chromaflow.core.nets.zhang import SIGGRAPH17
from chromaflow.plugins.cli.main import main

from support.pyav_synth import synth_rgb, write_clip

ABSENT_MODEL = ["--model", "siggraph17"]  # a registry model whose weights are never downloaded in tests


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The `base` architecture with seeded random weights: enough to run colorize end to end."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.save({"arch": "base", "state_dict": build_base().state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "sig.pt"
    torch.save({"arch": "siggraph17", "state_dict": SIGGRAPH17(width=4).state_dict()}, path)
    return str(path)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mkv"
    write_clip(path, frames=4, codec="ffv1")
    return path


@pytest.fixture
def meso(shared: Path) -> None:
    """The MesoNet weights in this test's model cache, so a deepfake run really writes its sidecars."""
    from chromaflow.core import registry

    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")


def frames_folder(folder: Path, count: int = 4) -> Path:
    """``folder/1.png`` ... (an image sequence ``folder/%d.png``)."""
    folder.mkdir()
    for i in range(1, count + 1):
        cv2.imwrite(str(folder / f"{i}.png"), synth_rgb(64, 48, i)[:, :, ::-1])
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: files by SHA-256, links by target, folders as such."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "folder"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "special"
    return found


def refused(argv: list[str], code: int, folder: Path, capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """Run ``argv``; it must exit with ``code`` without a traceback, name ``names`` and leave ``folder`` as it was."""
    before = snapshot(folder)
    assert main(argv) == code, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("chromaflow: error:"), err
    for name in names:
        assert name in err, f"{name!r} not named in: {err}"
    assert snapshot(folder) == before, "a refused run changes nothing"
    return err


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a folder) impossible to replace or write into for this user.

    An ordinary user gets read-only modes. Root ignores modes, so for root the immutable attribute
    (``chattr +i``) stands in; where the file system or the container refuses it, the test is skipped."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and `chattr +i` is refused here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


# ------------------------------------------------------------------------------- outputs naming an input


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--scores", "{clip}"], ["--scores", "clip.mkv", "IN"]),
        (["--vtt", "{clip}"], ["--vtt", "clip.mkv", "IN"]),
        (["{tmp}/o.mkv", "--scores", "{tmp}/o.mkv"], ["--scores", "o.mkv", "OUT"]),
        (["{tmp}/o.mkv", "--vtt", "{tmp}/o.mkv"], ["--vtt", "o.mkv", "OUT"]),
        (["--scores", "{tmp}/s.txt", "--vtt", "{tmp}/s.txt"], ["--scores", "--vtt", "s.txt"]),
        (["--scores", "{tmp}/hard.jsonl"], ["--scores", "hard.jsonl", "clip.mkv"]),
        (["--vtt", "{tmp}/soft.vtt"], ["--vtt", "soft.vtt", "clip.mkv"]),
    ],
    ids=["scores-is-in", "vtt-is-in", "scores-is-out", "vtt-is-out", "scores-is-vtt", "hard-link", "symlink"],
)
def test_deepfake_sidecars_never_overwrite_the_input_or_each_other(
    extra: list[str], names: list[str], meso: None, clip: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    os.link(clip, tmp_path / "hard.jsonl")
    (tmp_path / "soft.vtt").symlink_to(clip)
    argv = ["deepfake", str(clip), *(a.format(clip=clip, tmp=tmp_path) for a in extra), "--device", "cpu"]
    refused(argv, 6, tmp_path, capsys, *names)


def test_image_compare_never_overwrites_its_input(
    image_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "photo_compare.png"
    cv2.imwrite(str(src), np.full((16, 16), 90, np.uint8))
    argv = ["image", str(src), str(tmp_path / "photo.png"), "--compare", "--model", image_model]
    refused([*argv, "--size", "16", "--device", "cpu"], 6, tmp_path, capsys, "photo_compare.png", "compare")


def test_image_folder_compare_and_result_never_collide(
    image_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``x.png``'s compare image and the result for ``x_compare.png`` would both be ``out/x_compare.png``."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("x.png", "x_compare.png"):
        cv2.imwrite(str(src / name), np.full((16, 16), 90, np.uint8))
    argv = ["image", str(src), str(tmp_path / "out"), "--compare", "--model", image_model, "--size", "16"]
    refused(argv, 6, tmp_path, capsys, "x_compare.png", "x.png")


@pytest.mark.parametrize("verb", ["colorize", "deflicker"])
def test_a_sequence_pattern_spelled_differently_is_still_the_input(
    verb: str, base_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``seq/%d.png`` and ``seq/%01d.png`` (or ``%1d``) name the same files: the frames are never overwritten."""
    frames_folder(tmp_path / "seq")
    model = ["--model", base_model, "--size", "32"] if verb == "colorize" else []
    out = "%01d.png" if verb == "colorize" else "%1d.png"
    argv = [verb, str(tmp_path / "seq/%d.png"), str(tmp_path / "seq" / out), *model]
    refused(argv, 6, tmp_path, capsys, "%d.png", out, "1.png")


def test_the_clash_is_found_before_the_model_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames_folder(tmp_path / "seq")
    argv = ["colorize", str(tmp_path / "seq/%d.png"), str(tmp_path / "seq/%01d.png"), *ABSENT_MODEL]
    refused(argv, 6, tmp_path, capsys, "%01d.png")


def test_an_output_sequence_never_overwrites_a_reference_image(
    base_model: str, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = frames_folder(tmp_path / "keys", 2)
    argv = [
        "colorize",
        str(clip),
        str(keys / "%d.png"),
        "--ref",
        f"1={keys / '1.png'}",
        "--model",
        base_model,
    ]
    refused([*argv, "--size", "32"], 6, tmp_path, capsys, "--ref", "1.png")


def test_a_hard_link_of_the_input_is_the_input(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.link(clip, tmp_path / "same.mkv")
    refused(["deflicker", str(clip), str(tmp_path / "same.mkv")], 6, tmp_path, capsys, "same.mkv", "clip.mkv")


def test_patterns_naming_other_files_are_allowed(
    base_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``seq/%02d.png`` writes 01.png ... beside the input's 1.png ...: no clash, and the input is kept."""
    frames_folder(tmp_path / "seq")
    before = snapshot(tmp_path / "seq")
    argv = ["colorize", str(tmp_path / "seq/%d.png"), str(tmp_path / "seq/%02d.png"), "--model", base_model]
    assert main([*argv, "--size", "32", "--no-smooth", "--device", "cpu"]) == 0, capsys.readouterr().err
    after = snapshot(tmp_path / "seq")
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == ["01.png", "02.png", "03.png", "04.png"]


# ------------------------------------------------------------------------------ outputs that cannot be written


def test_an_output_that_is_a_folder_is_refused_before_work(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.jsonl").mkdir()
    refused(["deepfake", str(clip), "--scores", str(tmp_path / "s.jsonl")], 6, tmp_path, capsys, "folder")
    (tmp_path / "o.mkv").mkdir()
    argv = ["colorize", str(clip), str(tmp_path / "o.mkv"), *ABSENT_MODEL]
    refused(argv, 6, tmp_path, capsys, "o.mkv", "folder")


def test_an_output_that_is_not_a_regular_file_is_never_replaced(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO (like /dev/null, a device) would be swapped for a plain file by the final rename."""
    os.mkfifo(tmp_path / "s.jsonl")
    refused(["deepfake", str(clip), "--scores", str(tmp_path / "s.jsonl")], 6, tmp_path, capsys, "s.jsonl")


def test_a_write_protected_output_is_refused_and_kept(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept.mkv"
    out.write_bytes(b"the user's own file")
    with unwritable(out):
        refused(["deflicker", str(clip), str(out)], 6, tmp_path, capsys, "kept.mkv")
    assert out.read_bytes() == b"the user's own file"


def test_an_unwritable_output_folder_is_refused_before_work(
    image_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((16, 16), 90, np.uint8))
    locked = tmp_path / "locked"
    locked.mkdir()
    with unwritable(locked):
        refused(
            ["image", str(src / "a.png"), str(locked / "a.png"), *ABSENT_MODEL], 6, tmp_path, capsys, "locked"
        )
        argv = ["image", str(src), str(locked / "new"), "--model", image_model, "--size", "16"]
        refused(argv, 6, tmp_path, capsys, "locked")


@pytest.mark.parametrize("verb", ["colorize", "deflicker", "deepfake"])
def test_an_unknown_output_extension_is_a_usage_error_before_work(
    verb: str, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ABSENT_MODEL if verb == "colorize" else []
    err = refused([verb, str(clip), str(tmp_path / "out.xyz"), *model], 2, tmp_path, capsys, "out.xyz")
    assert ".mkv" in err, "the message says which extensions work"


# ------------------------------------------------------------------------------------------- stale partials


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_partials_of_the_same_output_are_removed_and_nothing_else(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead, live = _dead_pid(), os.getpid()
    old = time.time() - 3600
    leftovers = {
        f".out.chromaflow-partial-{dead}-0123abcd.mkv": False,  # ours, owner gone, old: removed
        f".out.chromaflow-partial-{live}-0123abcd.mkv": True,  # owner still running
        f".other.chromaflow-partial-{dead}-0123abcd.mkv": True,  # another output's
        ".out.chromaflow-partial-0123abcd.mkv": True,  # no owner in the name
        f".out.chromaflow-partial-{dead}-0123abcd.mkv.keep": True,  # not the pattern
    }
    for name in leftovers:
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (old, old))
    fresh = tmp_path / f".out.chromaflow-partial-{dead}-4567cdef.mkv"
    fresh.write_bytes(b"changed after this run started")
    later = time.time() + 3600
    os.utime(fresh, (later, later))
    leftovers[fresh.name] = True
    link = tmp_path / f".out.chromaflow-partial-{dead}-89abcdef.mkv"
    link.symlink_to(clip)  # a link is never ours
    leftovers[link.name] = True
    seq = frames_folder(tmp_path / "seq", 1)
    stale_dir = seq / f".#.png.chromaflow-partial-{dead}-0123abcd"
    stale_dir.mkdir()
    (stale_dir / "1.png").write_bytes(b"frame")
    odd_dir = seq / f".#.png.chromaflow-partial-{dead}-4567cdef"
    odd_dir.mkdir()
    (odd_dir / "notes.txt").write_text("not a frame of ours")
    for folder in (stale_dir, odd_dir):
        os.utime(folder, (old, old))

    assert main(["deflicker", str(clip), str(tmp_path / "out.mkv"), "--codec", "ffv1"]) == 0, (
        capsys.readouterr()
    )
    assert main(["deflicker", str(clip), str(seq / "%d.png")]) == 0, capsys.readouterr()
    for name, kept in leftovers.items():
        assert (tmp_path / name).is_symlink() or (tmp_path / name).exists() == kept, name
    assert not stale_dir.exists() and (odd_dir / "notes.txt").exists()
    assert (tmp_path / "out.mkv").is_file()


# ---------------------------------------------------------------------------------- the Python API as well


def test_transcode_refuses_a_pattern_naming_its_input_frames(tmp_path: Path) -> None:
    from chromaflow.core.errors import OutputError
    from chromaflow.filters.pyav import transcode

    seq = frames_folder(tmp_path / "seq")
    before = snapshot(seq)
    with pytest.raises(OutputError, match="is the input"):
        transcode(str(seq / "%d.png"), str(seq / "%01d.png"))
    assert snapshot(seq) == before


# ------------------------------------------------------------------------------------- the numbering rule


@pytest.mark.parametrize(
    ("pattern", "name", "number"),
    [
        ("%d.png", "1.png", 1),
        ("%01d.png", "1.png", 1),
        ("%1d.png", "10.png", 10),
        ("%d.png", "01.png", None),  # FFmpeg writes frame 1 of %d as 1.png, never 01.png
        ("%05d.png", "00001.png", 1),
        ("%05d.png", "1.png", None),
        ("%05d.png", "123456.png", 123456),  # wider than the padding: all digits
        ("f_%03d_x.tif", "f_007_x.tif", 7),
        ("f_%03d_x.tif", "g_007_x.tif", None),
        ("100%%_%d.png", "100%_3.png", 3),  # %% is a literal %
        ("%d.png", ".png", None),
    ],
)
def test_frame_patterns_name_the_files_ffmpeg_writes(pattern: str, name: str, number: int | None) -> None:
    from chromaflow.core.frame_pattern import FramePattern

    found = FramePattern.parse(pattern)
    assert found.names(name) == number
    if number is not None:
        assert found.name_of(number) == name
