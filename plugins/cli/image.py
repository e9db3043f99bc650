"""`chromaflow image`: colorize image files (one file, a folder or a glob)."""

import argparse
import glob
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from chromaflow.core import registry
from chromaflow.core.errors import InputError, ModelError, OutputError, UsageError

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


# ------------------------------------------------------------------------------------------- reading/writing


def read_image(path: Path) -> np.ndarray:
    """The image as OpenCV reads it (gray, BGR or BGRA; uint8, uint16 or float32)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(
            f"cannot read {path} as an image; use a format OpenCV reads ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise InputError(f"{path}: unsupported sample type {image.dtype}; use 8/16-bit or float images")
    return image


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


def write_image(path: Path, image: np.ndarray) -> None:
    """Write atomically: a temporary file in the same folder, renamed at the end."""
    image = _fit_format(image, path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        ok = cv2.imwrite(str(tmp), image)
        if not ok:
            raise OutputError(f"cannot write {path}: OpenCV refused the format or the folder is not writable")
        os.replace(tmp, path)
    except cv2.error as err:
        raise OutputError(f"cannot write {path}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)


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

    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.hints import collect_hints

    hints = collect_hints(args.hint or (), args.hints_json)
    pairs = plan(args.input, args.output)
    colorizer = Colorizer(
        args.model or default_model(),
        device=args.device,
        precision=args.precision,
        size=args.size,
        arch=args.arch,
    )
    if not Path(args.input).is_file():  # a folder or glob writes into an output folder, made if needed
        Path(args.output).mkdir(parents=True, exist_ok=True)
    for src, dst in tqdm(pairs, desc="colorize", unit="img", file=sys.stderr, disable=len(pairs) < 2):
        image = read_image(src)
        rgb_out = colorizer.colorize(_swap_rb(image), hints=hints)
        out = _swap_rb(rgb_out)
        write_image(dst, out)
        if args.compare:
            write_image(compare_path(dst), side_by_side(image, out))
        log.info("%s -> %s", src, dst)
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
        "--model", help="registry name (base, siggraph17, eccv16) or a .pt state_dict file (default: base)"
    )
    parser.add_argument("--arch", help="architecture of a .pt --model file (eccv16, siggraph17, base)")
    parser.add_argument(
        "--hint", action="append", metavar="X,Y,#RRGGBB[,R]", help="colour hint in input pixels (repeatable)"
    )
    parser.add_argument("--hints-json", metavar="FILE", help="JSON list of hints")
    parser.add_argument("--size", type=int, default=256, help="model input side (multiple of 8; default 256)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: $CHROMAFLOW_DEVICE or auto)")
    parser.add_argument("--precision", help="auto, fp32, fp16 or bf16 (default auto)")
    parser.add_argument(
        "--compare", action="store_true", help="also write input|output side by side (NAME_compare)"
    )
    parser.set_defaults(func=run)
