"""`chromaflow image`: colorize image files (one file, a folder or a glob).

Before any work, every output (and compare image) is checked against every input and against each other
(:mod:`chromaflow.core.write_plan`). Results are written under partial names as they are made and moved into place
together at the end, so a run that fails or is stopped leaves none of its outputs, and files already under those
names stay as they were.
"""

import argparse
import glob
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from chromaflow.core import partials, registry, stopping
from chromaflow.core.errors import InputError, ModelError, OutputError, UsageError
from chromaflow.core.image_files import DEFAULT_MAX_PIXELS, imread_capped
from chromaflow.core.mixing import members_of
from chromaflow.core.write_plan import WritePlan
from chromaflow.plugins.cli.model_options import add_model_arguments

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".jpe", ".bmp", ".webp")
_NO_ALPHA = (".jpg", ".jpeg", ".jpe", ".ppm", ".pgm", ".pnm")


# ------------------------------------------------------------------------------------------------ planning


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def plan(source: str, target: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs for a file, a folder or a glob pattern."""
    src = Path(source)
    out = Path(target)
    if src.is_file():
        dst = out / src.name if out.is_dir() else out
        if not _is_image(dst):
            raise UsageError(f"output {dst} has no image extension: use one of {', '.join(IMAGE_EXTENSIONS)}")
        if not dst.parent.is_dir():
            raise OutputError(f"output folder {dst.parent} does not exist; create it first")
        pairs = [(src, dst)]
    else:
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.is_file() and _is_image(p))
        elif any(ch in source for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(source) if Path(p).is_file() and _is_image(Path(p)))
        else:
            raise InputError(f"input {source} does not exist; give an image file, a folder or a glob pattern")
        if not files:
            raise InputError(f"no image files found in {source} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        if out.exists() and not out.is_dir():
            raise OutputError(f"output {out} is a file; a folder (or glob) of inputs needs an output folder")
        names = [p.name for p in files]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise UsageError(
                f"several inputs share the file name(s) {', '.join(clashes)}; outputs would collide"
            )
        pairs = [(p, out / p.name) for p in files]
    for s, d in pairs:
        if s.resolve() == d.resolve():
            raise OutputError(f"output {d} is the input itself; choose another output path or folder")
    return pairs


def check_files(args: argparse.Namespace, pairs: list[tuple[Path, Path]], folder_mode: bool) -> None:
    """Every output and compare image against every input and each other, and whether each can be put in place
    (exit 6); then remove stale partials of the outputs left by killed runs."""
    files = WritePlan()
    for src, _dst in pairs:
        files.read(src, "the input")
    files.read(args.hints_json, "the hints file --hints-json")
    for member in members_of(args.model) if args.model else ():
        if os.path.isfile(os.path.expanduser(member)):
            files.read(os.path.expanduser(member), "the model file --model")
    for src, dst in pairs:
        files.write(dst, f"the output for {src.name}", make_folder=folder_mode)
        if args.compare:
            files.write(compare_path(dst), f"the compare image of {src.name}", make_folder=folder_mode)
    files.check()
    files.remove_stale_partials()


# ------------------------------------------------------------------------------------------- reading/writing


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as OpenCV reads it (gray, BGR or BGRA; uint8, uint16 or float32), refused over ``max_pixels``
    (:func:`chromaflow.core.image_files.imread_capped`)."""
    image = imread_capped(path, max_pixels, how_to_allow="--max-pixels")
    if image is None:
        raise InputError(
            f"cannot read {path} as an image; use a format OpenCV reads ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise InputError(f"{path}: unsupported sample type {image.dtype}; use 8/16-bit or float images")
    return image


def _pixel_count(text: str) -> int:
    """An argparse ``type`` for --max-pixels: a whole number of pixels of at least 1."""
    try:
        number = float(text)  # 1e8 is accepted too
    except ValueError:
        number = 0.0
    if not 1 <= number <= 2**53 or number != int(number):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pixel count: give a whole number >= 1, e.g. 100000000"
        )
    return int(number)


def _swap_rb(image: np.ndarray) -> np.ndarray:
    """BGR(A) <-> RGB(A); gray unchanged."""
    if image.ndim == 3 and image.shape[2] in (3, 4):
        order = [2, 1, 0] + ([3] if image.shape[2] == 4 else [])
        return np.ascontiguousarray(image[:, :, order])
    return image


def _fit_format(image: np.ndarray, path: Path) -> np.ndarray:
    """Drop what the output format cannot store (alpha in JPEG, 16 bits in 8-bit formats)."""
    ext = path.suffix.lower()
    if ext in _NO_ALPHA and image.ndim == 3 and image.shape[2] == 4:
        log.warning("%s cannot store alpha; it is dropped", path.name)
        image = image[:, :, :3]
    if ext in _EIGHT_BIT_ONLY and image.dtype == np.uint16:
        log.warning("%s stores 8 bits per sample; the 16-bit result is rounded to 8 bits", path.name)
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    if image.dtype == np.float32 and ext not in (".tif", ".tiff"):
        if ext in _EIGHT_BIT_ONLY:
            image = np.round(np.clip(image, 0, 1) * 255.0).astype(np.uint8)
        else:
            image = np.round(np.clip(image, 0, 1) * 65535.0).astype(np.uint16)
    return image


def _encode(tmp: Path, image: np.ndarray, path: Path) -> None:
    """Encode ``image`` for ``path`` into the file ``tmp`` (same extension)."""
    try:
        ok = cv2.imwrite(str(tmp), _fit_format(image, path))
    except cv2.error as err:
        raise OutputError(f"cannot write {path}: {err}") from err
    if not ok:
        raise OutputError(f"cannot write {path}: OpenCV refused the format or the folder is not writable")


def write_image(path: Path, image: np.ndarray) -> None:
    """Write atomically: a partial file in the same folder, renamed at the end."""
    tmp = partials.partial_file(path)
    partials.track(tmp)
    try:
        _encode(tmp, image, path)
        with stopping.moving_into_place():
            os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
        partials.untrack(tmp)


class StagedImages:
    """Results under partial names until :meth:`commit` moves them all into place; :meth:`discard` removes them
    (and the output folders this run created), so a failed or stopped run leaves nothing."""

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path]] = []
        self._made: list[Path] = []

    def make_folder(self, folder: Path) -> None:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for item in reversed(missing):
            try:
                item.mkdir()
            except OSError as err:
                raise OutputError(f"cannot create the output folder {item}: {err.strerror or err}") from err
            self._made.append(item)

    def write(self, path: Path, image: np.ndarray) -> None:
        tmp = partials.partial_file(path)
        partials.track(tmp)
        self._moves.append((tmp, path))
        _encode(tmp, image, path)

    def commit(self) -> None:
        stopping.pause_at("commit")
        with stopping.moving_into_place():
            for tmp, path in self._moves:
                try:
                    os.replace(tmp, path)
                except OSError as err:
                    raise OutputError(f"cannot put {path} in place: {err.strerror or err}") from err
                partials.untrack(tmp)
        self._moves.clear()
        self._made.clear()

    def discard(self) -> None:
        for tmp, _path in self._moves:
            tmp.unlink(missing_ok=True)
            partials.untrack(tmp)
        self._moves.clear()
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: something else is in it now
        self._made.clear()


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """input | output as one BGR image (gray input shown as gray, alpha dropped)."""
    if before.ndim == 2:
        before = cv2.cvtColor(before, cv2.COLOR_GRAY2BGR)
    return np.concatenate((before[:, :, :3], after[:, :, :3].astype(before.dtype)), axis=1)


def compare_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_compare{path.suffix}")


# ------------------------------------------------------------------------------------------------- the verb


def default_model() -> str:
    """``base`` when its bundled weights are installed; otherwise say how to get a Zhang model."""
    if registry.is_present("base"):
        return "base"
    raise ModelError(
        "no --model given and the built-in model 'base' is not in this install; download a Zhang model with "
        "`chromaflow models download siggraph17` (or eccv16) and pass --model siggraph17 (or --model eccv16)"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from chromaflow.core.hints import collect_hints
    from chromaflow.core.options import ColorizeOptions

    hints = collect_hints(args.hint or (), args.hints_json)
    pairs = plan(args.input, args.output)
    folder_mode = not Path(args.input).is_file()  # a folder or glob: an output folder, made if needed
    check_files(args, pairs, folder_mode)
    colorizer = ColorizeOptions(
        model=args.model or default_model(),
        device=args.device,
        precision=args.precision,
        size=args.size,
        render_factor=args.render_factor,
        mix=args.mix,
        mix_rule=args.mix_rule,
        mix_softness=args.mix_softness,
    ).new_colorizer(args.arch)
    assert colorizer is not None
    staged = StagedImages()
    try:
        if folder_mode:
            staged.make_folder(Path(args.output))
        for src, dst in tqdm(pairs, desc="colorize", unit="img", file=sys.stderr, disable=len(pairs) < 2):
            image = read_image(src, args.max_pixels)
            rgb_out = colorizer.colorize(_swap_rb(image), hints=hints)
            out = _swap_rb(rgb_out)
            staged.write(dst, out)
            if args.compare:
                staged.write(compare_path(dst), side_by_side(image, out))
            log.info("%s -> %s", src, dst)
            stopping.pause_at("frame")
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "image",
        help="colorize image files (a file, a folder or a glob)",
        description="Colorize images: 8/16-bit, gray or colour (colour is replaced), alpha carried through. "
        "A folder or glob of inputs writes into an output folder, keeping file names.",
    )
    parser.add_argument("input", metavar="IN", help="an image file, a folder of images, or a quoted glob")
    parser.add_argument("output", metavar="OUT", help="output file, or output folder for several inputs")
    parser.add_argument(
        "--model",
        metavar="NAME|A+B",
        help="registry name (chromaflow models list), a .pt state_dict file, or two of them as A+B (their colours "
        "mixed, see --mix-rule) (default: base)",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--hint", action="append", metavar="X,Y,#RRGGBB[,R]", help="colour hint in input pixels (repeatable)"
    )
    parser.add_argument("--hints-json", metavar="FILE", help="JSON list of hints")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: $CHROMAFLOW_DEVICE or auto)")
    parser.add_argument("--precision", help="auto, fp32, fp16 or bf16 (default auto)")
    parser.add_argument(
        "--compare", action="store_true", help="also write input|output side by side (NAME_compare)"
    )
    parser.add_argument(
        "--max-pixels",
        type=_pixel_count,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse (exit 3) images of more than N pixels, read from the file's header before decoding "
        f"(default {DEFAULT_MAX_PIXELS}, 100 megapixels)",
    )
    parser.set_defaults(func=run)
