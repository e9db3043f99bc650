"""The studio's web application: a Starlette app serving the page (``static/``) and its JSON API.

Every route is a thin door onto the core (previews, bakes and strips through :mod:`.colouring`, projects through
:mod:`chromaflow.core.project`) or onto the CLI (renders and scans through :mod:`.jobs`). Files come only from the
sandbox (:mod:`.sandbox`); every error reaches the page as ``{"error": message}``, never a traceback.
"""

import base64
import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chromaflow.core.errors import ChromaflowError, InputError, ModelError, OutputError, UsageError
from chromaflow.core.hints import Hint, hints_from_json
from chromaflow.core.image_files import DEFAULT_MAX_PIXELS
from chromaflow.core.options import MODES
from chromaflow.core.project import Project, load_project, project_from_json, save_project, store_reference
from chromaflow.plugins.studio.colouring import Palette, colour_models
from chromaflow.plugins.studio.footage import Footage, open_footage
from chromaflow.plugins.studio.guard import BodyTooLargeError, Guard
from chromaflow.plugins.studio.jobs import Jobs
from chromaflow.plugins.studio.sandbox import MEDIA_SUFFIXES, ForbiddenError, Sandbox

STATIC = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD = 2048 << 20  # chromaflow studio --max-upload's default, in bytes
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
log = logging.getLogger("chromaflow.studio")


@dataclass
class StudioConfig:
    """What ``chromaflow studio`` was started with."""

    paths: list[Path]
    workdir: Path  # uploads/, projects/, renders/ live here
    token: str | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    device: str | None = None


def _status(err: Exception) -> int:
    if isinstance(err, ForbiddenError):
        return 403
    if isinstance(err, BodyTooLargeError):
        return 413
    if isinstance(err, InputError):
        return 404 if "does not exist" in str(err) else 422
    if isinstance(err, ModelError | UsageError):
        return 400
    if isinstance(err, OutputError):
        return 500
    return 500


def _png(image: np.ndarray) -> Response:
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError("could not encode the image")
    return Response(data.tobytes(), media_type="image/png", headers={"cache-control": "no-store"})


def _data_url(image: np.ndarray) -> str:
    _ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a whole number, got {value!r}") from None


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data


class Studio:
    """The state behind the routes: sandbox, open footage, colorizers, jobs."""

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        work = config.workdir.expanduser().resolve()
        self.projects = work / "projects"
        self.renders = work / "renders"
        for folder in (self.projects, self.renders):
            folder.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(list(config.paths), work / "uploads")
        self.palette = Palette(config.device)
        self.jobs = Jobs({"CHROMAFLOW_DEVICE": config.device} if config.device else None)
        self._footage: dict[str, Footage] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- helpers

    def footage(self, key: Any) -> Footage:
        path = self.sandbox.resolve(str(key))
        with self._lock:
            cached = self._footage.get(str(path))
        if cached is None:
            cached = open_footage(path)
            with self._lock:
                self._footage[str(path)] = cached
        return cached

    def project_path(self, name: Any) -> Path:
        if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".refs"):
            raise UsageError(
                f"project name {name!r} is not usable: letters, digits, '.', '_' and '-' (up to 80), no folders"
            )
        return self.projects / f"{name.removesuffix('.json')}.json"

    def hints(self, data: Any) -> list[Hint]:
        try:
            return hints_from_json(data if data is not None else [])
        except UsageError as err:
            raise UsageError(f"bad hint from the page: {err}") from None

    def reference(self, project: Path, frame: int, rgb: np.ndarray) -> str:
        stored = store_reference(Project(self.projects), project, frame, rgb)
        return stored.keyframes[frame]


# ---------------------------------------------------------------------- routes


def build_app(config: StudioConfig) -> Starlette:
    """The studio's ASGI app (wrapped in its :class:`~.guard.Guard`)."""
    studio = Studio(config)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "models": await run_in_threadpool(colour_models),
                "sources": await run_in_threadpool(studio.sandbox.listing),
                "projects": sorted(p.stem for p in studio.projects.glob("*.json")),
                "transfer_modes": list(MODES),
                "max_upload": config.max_upload,
            }
        )

    async def source(request: Request) -> Response:
        f = await run_in_threadpool(studio.footage, request.query_params.get("key"))
        pw, ph = f.preview_size
        return JSONResponse(
            {
                "key": request.query_params["key"],
                "name": f.path.name,
                "width": f.width,
                "height": f.height,
                "fps": f.fps,
                "frames": f.num_frames,
                "preview_width": pw,
                "preview_height": ph,
                "cuts": f.cuts,
            }
        )

    async def frame(request: Request) -> Response:
        f = await run_in_threadpool(studio.footage, request.query_params.get("key"))
        n = _int(request.query_params.get("n", 0), "n")
        thumb = request.query_params.get("thumb") == "1"
        return _png(await run_in_threadpool(f.thumbnail if thumb else f.preview, n))

    async def preview(request: Request) -> Response:
        data = await _json(request)
        f = await run_in_threadpool(studio.footage, data.get("key"))
        n, hints = _int(data.get("n", 0), "n"), studio.hints(data.get("hints"))
        size = None if data.get("size") in (None, "") else _int(data["size"], "size")
        image = await run_in_threadpool(
            studio.palette.preview, f, n, hints, str(data.get("model", "base")), size
        )
        return _png(image)

    async def bake(request: Request) -> Response:
        data = await _json(request)
        f = await run_in_threadpool(studio.footage, data.get("key"))
        project, n = studio.project_path(data.get("project")), _int(data.get("n"), "n")
        f.check(n)
        size = None if data.get("size") in (None, "") else _int(data["size"], "size")
        hints = studio.hints(data.get("hints"))
        rgb = await run_in_threadpool(studio.palette.bake, f, n, hints, str(data.get("model", "base")), size)
        return JSONResponse({"frame": n, "image": studio.reference(project, n, rgb)})

    async def upload_keyframe(request: Request) -> Response:
        q = request.query_params
        f = await run_in_threadpool(studio.footage, q.get("key"))
        project, n = studio.project_path(q.get("project")), _int(q.get("n"), "n")
        f.check(n)
        raw = await request.body()
        rgb = await run_in_threadpool(_decode_still, raw, f)
        return JSONResponse({"frame": n, "image": studio.reference(project, n, rgb)})

    async def keyframe_image(request: Request) -> Response:
        project = studio.project_path(request.query_params.get("project"))
        rel = str(request.query_params.get("image", ""))
        path = (project.parent / rel).resolve()
        if not path.is_relative_to(studio.projects) or not path.is_file():
            raise ForbiddenError(f"no keyframe image {rel!r} in the studio's projects")
        return FileResponse(path, headers={"cache-control": "no-store"})

    async def strip(request: Request) -> Response:
        data = await _json(request)
        f = await run_in_threadpool(studio.footage, data.get("key"))
        project, n = studio.project_path(data.get("project")), _int(data.get("n"), "n")
        rel = str(data.get("image", ""))
        path = (project.parent / rel).resolve()
        if not path.is_relative_to(studio.projects) or not path.is_file():
            raise InputError(f"keyframe {n} has no reference image yet; bake or upload one")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"keyframe {n}'s reference image {rel} cannot be read; bake or upload it again")
        ref = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        model = data.get("model") or None
        frames = await run_in_threadpool(
            studio.palette.strip,
            f,
            n,
            ref,
            None if model == "none" else model,
            str(data.get("transfer", "auto")),
        )
        return JSONResponse({"start": n, "images": [_data_url(x) for x in frames]})

    async def save(request: Request) -> Response:
        data = await _json(request)
        path = studio.project_path(data.get("name"))
        doc = data.get("project")
        if not isinstance(doc, dict):
            raise UsageError("send the project as a JSON object")
        key = doc.pop("source_key", None)
        if key is not None:
            doc["source"] = os.path.relpath(studio.sandbox.resolve(str(key)), studio.projects)
        project = project_from_json(doc, studio.projects)
        await run_in_threadpool(save_project, project, path)
        return JSONResponse({"name": path.stem, "project": _doc_for_page(studio, project)})

    async def load(request: Request) -> Response:
        path = studio.project_path(request.query_params.get("name"))
        project = await run_in_threadpool(load_project, path)
        return JSONResponse({"name": path.stem, "project": _doc_for_page(studio, project)})

    async def render(request: Request) -> Response:
        data = await _json(request)
        path = studio.project_path(data.get("project"))
        project = await run_in_threadpool(load_project, path)
        src = project.source_path()
        if src is None:
            raise UsageError("the project names no source; open a clip and save the project first")
        studio.sandbox.key_of(src)  # the source must still be one the studio serves
        project.engine_inputs()  # refuse hints with keyframes etc. here, not in the child
        lossless = data.get("format") == "mkv-lossless"
        taken = len(list(studio.renders.glob(f"{path.stem}-colorized-*")))
        out = studio.renders / f"{path.stem}-colorized-{taken + 1}{'.mkv' if lossless else '.mp4'}"
        args = ["colorize", str(src), str(out), "--project", str(path)]
        args += ["--codec", "ffv1"] if lossless else []
        job = studio.jobs.start("render", args, {"video": out})
        return JSONResponse(job.to_json())

    async def deepfake(request: Request) -> Response:
        data = await _json(request)
        src = studio.sandbox.resolve(str(data.get("key")))
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", src.stem)
        n = len(list(studio.renders.glob(f"{stem}-scores-*.jsonl"))) + 1
        jsonl, vtt = studio.renders / f"{stem}-scores-{n}.jsonl", studio.renders / f"{stem}-scores-{n}.vtt"
        args = ["deepfake", str(src), "--no-overlay", "--scores", str(jsonl), "--vtt", str(vtt)]
        for flag in ("detector", "classifier"):
            if data.get(flag):
                args += [f"--{flag}", str(data[flag])]
        job = studio.jobs.start("deepfake", args, {"jsonl": jsonl, "vtt": vtt})
        return JSONResponse(job.to_json())

    async def job_state(request: Request) -> Response:
        return JSONResponse(studio.jobs.get(request.path_params["id"]).to_json())

    async def job_events(request: Request) -> Response:
        job = studio.jobs.get(request.path_params["id"])

        async def events() -> Any:
            seen = -1
            while True:
                version = await run_in_threadpool(job.wait_change, seen, 1.0)
                if version != seen:
                    seen = version
                    yield f"data: {json.dumps(job.to_json())}\n\n"
                if job.state != "running":
                    return
                if await request.is_disconnected():
                    return

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    async def job_cancel(request: Request) -> Response:
        return JSONResponse(studio.jobs.cancel(request.path_params["id"]).to_json())

    async def job_download(request: Request) -> Response:
        job = studio.jobs.get(request.path_params["id"])
        what = request.query_params.get("what", "video")
        path = job.outputs.get(what)
        if job.state != "done" or path is None or not path.is_file():
            raise InputError(f"job {job.id} has no {what} to download (state: {job.state})")
        return FileResponse(path, filename=path.name)

    async def job_scores(request: Request) -> Response:
        job = studio.jobs.get(request.path_params["id"])
        path = job.outputs.get("jsonl")
        if job.kind != "deepfake" or job.state != "done" or path is None:
            raise InputError(f"job {job.id} is not a finished deepfake scan")
        return JSONResponse(await run_in_threadpool(_score_curves, path))

    async def upload(request: Request) -> Response:
        name = Path(str(request.query_params.get("name", ""))).name
        if not name or name.startswith(".") or Path(name).suffix.lower() not in MEDIA_SUFFIXES:
            raise UsageError(f"upload {name!r}: give a video or image file ({', '.join(MEDIA_SUFFIXES)})")
        target = studio.sandbox.uploads / name
        tmp = target.with_name(f".{name}.{os.getpid()}.partial")
        try:
            with tmp.open("wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return JSONResponse({"key": studio.sandbox.key_of(target), "name": f"uploads/{name}"})

    async def on_error(request: Request, err: Exception) -> Response:
        if isinstance(err, ChromaflowError | BodyTooLargeError):
            return JSONResponse({"error": str(err)}, status_code=_status(err))
        log.exception("studio: internal error on %s", request.url.path)
        return JSONResponse(
            {
                "error": f"internal error ({type(err).__name__}); the terminal running the studio has the details"
            },
            status_code=500,
        )

    async def not_found(request: Request, err: Exception) -> Response:
        code = getattr(err, "status_code", 404)
        return JSONResponse({"error": f"{request.url.path}: {getattr(err, 'detail', 'not found')}"}, code)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/source", source),
        Route("/api/frame", frame),
        Route("/api/preview", preview, methods=["POST"]),
        Route("/api/keyframe/bake", bake, methods=["POST"]),
        Route("/api/keyframe/upload", upload_keyframe, methods=["POST"]),
        Route("/api/keyframe/image", keyframe_image),
        Route("/api/strip", strip, methods=["POST"]),
        Route("/api/project", save, methods=["POST"]),
        Route("/api/project", load, methods=["GET"]),
        Route("/api/render", render, methods=["POST"]),
        Route("/api/deepfake", deepfake, methods=["POST"]),
        Route("/api/jobs/{id}", job_state),
        Route("/api/jobs/{id}/events", job_events),
        Route("/api/jobs/{id}/cancel", job_cancel, methods=["POST"]),
        Route("/api/jobs/{id}/download", job_download),
        Route("/api/jobs/{id}/scores", job_scores),
        Route("/api/upload", upload, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ChromaflowError: on_error,
            BodyTooLargeError: on_error,
            Exception: on_error,
            404: not_found,
            405: not_found,
        },
        lifespan=_lifespan(studio),
    )
    app.state.studio = studio
    return Guard(app, token=config.token, max_body=config.max_upload)  # type: ignore[return-value]


def _lifespan(studio: Studio) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(studio.jobs.close)  # running renders stop cleanly (their partials removed)

    return lifespan


def _doc_for_page(studio: Studio, project: Project) -> dict[str, Any]:
    """The project's JSON plus the sandbox key of its source (None when the studio does not serve it)."""
    doc = project.to_json()
    src = project.source_path()
    try:
        doc["source_key"] = studio.sandbox.key_of(src) if src is not None and src.is_file() else None
    except ForbiddenError:
        doc["source_key"] = None
    return doc


def _decode_still(raw: bytes, footage: Footage) -> np.ndarray:
    """An uploaded coloured still as RGB uint8 at the frame's size (same aspect ratio, as propagation needs)."""
    data = np.frombuffer(raw, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError("the uploaded still is not an image OpenCV can read; use PNG or JPEG")
    h, w = img.shape[:2]
    if h * w > DEFAULT_MAX_PIXELS:
        raise InputError(f"the uploaded still is {w}x{h}; scale it down first")
    if abs(w / h - footage.width / footage.height) > 0.01 * footage.width / footage.height:
        raise InputError(
            f"the still is {w}x{h} but the frames are {footage.width}x{footage.height}: a keyframe is a colouring "
            "of its frame (same aspect ratio)"
        )
    img = cv2.resize(img, (footage.width, footage.height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _score_curves(path: Path) -> dict[str, Any]:
    """Per-track score curves and per-frame faces from a scan's JSONL (as ``chromaflow deepfake --scores`` wrote)."""
    tracks: dict[str, list[list[float]]] = {}
    faces: dict[str, list[dict[str, Any]]] = {}
    video: dict[str, Any] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            if "video" in item:
                video = item["video"]
                continue
            n = item["frame"]
            faces[str(n)] = item.get("faces", [])
            for face in item.get("faces", []):
                if face.get("score") is not None:
                    tracks.setdefault(str(face.get("track")), []).append([n, face["score"]])
    return {"tracks": tracks, "faces": faces, "video": video}
