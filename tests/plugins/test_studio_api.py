"""chromaflow studio's API through Starlette's TestClient (httpx): sources and frames, hinted previews, keyframes,
projects, render and scan jobs (the real CLI in a child process), and the doors: sandbox, origin, host, token,
upload cap, errors as messages."""

import json
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from chromaflow.filters.pyav.frames import plane_view
from chromaflow.plugins.cli.main import main
from chromaflow.plugins.studio.app import StudioConfig, build_app

from support.face_media import write_face_clip
from support.pyav_synth import write_clip

BASE = "http://127.0.0.1:8765"
W, H = 96, 64


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_clip(folder / "clip.mkv", width=W, height=H, frames=8, gray=True, audio=True)
    cv2.imwrite(str(folder / "still.png"), np.full((H, W, 3), 120, np.uint8))
    (folder / "notes.txt").write_text("not media")
    return folder


@pytest.fixture
def client(media: Path, tmp_path: Path) -> TestClient:
    return TestClient(build_app(StudioConfig([media], tmp_path / "work")), base_url=BASE)


def _key(client: TestClient, name: str) -> str:
    return next(s["key"] for s in client.get("/api/info").json()["sources"] if s["name"] == name)


def _png(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _follow(client: TestClient, job: dict) -> list[dict]:
    states = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                states.append(json.loads(line[6:]))
    return states


def test_sources_frames_and_a_hint_that_moves_the_colour(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert sorted(s["name"] for s in info["sources"]) == ["clip.mkv", "still.png"]  # media files only
    assert info["models"][0] == "base" and "propagate" in info["transfer_modes"]
    key = _key(client, "clip.mkv")
    meta = client.get("/api/source", params={"key": key}).json()
    assert (meta["width"], meta["height"], meta["frames"], meta["cuts"]) == (W, H, 8, [])
    gray = _png(client.get("/api/frame", params={"key": key, "n": 3}).content)
    assert gray.shape == (H, W, 3) and np.array_equal(gray[..., 0], gray[..., 1])
    thumb = _png(client.get("/api/frame", params={"key": key, "n": 3, "thumb": 1}).content)
    assert max(thumb.shape[:2]) <= 96
    plain = _png(client.post("/api/preview", json={"key": key, "n": 3, "hints": []}).content)
    blue = {"x": 40, "y": 30, "color": "#0020ff", "radius": 8}
    hinted = _png(client.post("/api/preview", json={"key": key, "n": 3, "hints": [blue]}).content)
    target = np.array([0, 32, 255], np.float64)
    near = (slice(26, 35), slice(36, 45))
    before = np.linalg.norm(plain[near].reshape(-1, 3) - target, axis=1).mean()
    after = np.linalg.norm(hinted[near].reshape(-1, 3) - target, axis=1).mean()
    assert after < before - 10, "the pixels near the hint moved toward its colour"
    still = client.get("/api/source", params={"key": _key(client, "still.png")}).json()
    assert still["frames"] == 1


def test_keyframes_projects_and_a_render_equal_to_the_cli(
    client: TestClient, media: Path, tmp_path: Path
) -> None:
    key = _key(client, "clip.mkv")
    hint = {"x": 20, "y": 20, "color": "#ff4000", "radius": 6}
    baked = client.post(
        "/api/keyframe/bake", json={"key": key, "project": "p1", "n": 0, "hints": [hint]}
    ).json()
    assert baked == {"frame": 0, "image": "p1.refs/key-000000.png"}
    ref = _png(client.get("/api/keyframe/image", params={"project": "p1", "image": baked["image"]}).content)
    assert ref.shape == (H, W, 3) and ref[..., 0].mean() > ref[..., 2].mean(), "the hinted colour is baked in"
    strip = client.post(
        "/api/strip", json={"key": key, "project": "p1", "n": 0, "image": baked["image"]}
    ).json()
    assert (
        strip["start"] == 0 and len(strip["images"]) == 8 and strip["images"][0].startswith("data:image/png")
    )
    _, buffer = cv2.imencode(".png", np.full((H * 2, W * 2, 3), (40, 90, 200), np.uint8))
    uploaded = client.post(
        "/api/keyframe/upload", params={"key": key, "project": "p1", "n": 5}, content=buffer.tobytes()
    ).json()
    assert uploaded == {"frame": 5, "image": "p1.refs/key-000005.png"}
    doc = {"chromaflow_project": 1, "source_key": key, "model": "base", "smooth": 1, "transfer": "propagate",
           "keyframes": {"0": baked["image"], "5": uploaded["image"]}}  # fmt: skip
    saved = client.post("/api/project", json={"name": "p1", "project": doc}).json()
    assert saved["project"]["source_key"] == key and saved["project"]["keyframes"]["5"] == uploaded["image"]
    assert client.get("/api/project", params={"name": "p1"}).json() == saved
    job = client.post("/api/render", json={"project": "p1", "format": "mkv-lossless"}).json()
    states = _follow(client, job)
    assert states[-1]["state"] == "done" and states[-1]["frames"] == 8 and states[-1]["outputs"] == ["video"]
    rendered = client.get(f"/api/jobs/{job['id']}/download", params={"what": "video"})
    studio_out = tmp_path / "studio.mkv"
    studio_out.write_bytes(rendered.content)
    project_file = tmp_path / "work" / "projects" / "p1.json"
    cli_out = tmp_path / "cli.mkv"
    assert main(["colorize", str(media / "clip.mkv"), str(cli_out), "--project", str(project_file),
                 "--codec", "ffv1", "--quiet"]) == 0  # fmt: skip
    with av.open(str(studio_out)) as a, av.open(str(cli_out)) as b:
        assert len(a.streams.audio) == 1, "audio kept"
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
    assert len(pairs) == 8
    for fa, fb in pairs:
        assert all(np.array_equal(plane_view(fa, p), plane_view(fb, p)) for p in range(3))


def test_render_cancel_leaves_nothing_and_bad_projects_fail_up_front(client: TestClient, media: Path) -> None:
    key = _key(client, "clip.mkv")
    both = {"chromaflow_project": 1, "source_key": key, "frame_hints": {"1": ["3,3,#ff0000"]},
            "keyframes": {"0": "none.png"}}  # fmt: skip
    client.post("/api/project", json={"name": "bad", "project": both})
    refused = client.post("/api/render", json={"project": "bad"})
    assert refused.status_code == 404 and "none.png, which does not exist" in refused.json()["error"]
    future = client.post("/api/project", json={"name": "v2", "project": {"chromaflow_project": 2}})
    assert future.status_code == 400 and "project version 2 is not known" in future.json()["error"]
    long_clip = media / "long.mkv"
    write_clip(long_clip, width=W, height=H, frames=400)
    doc = {"chromaflow_project": 1, "source_key": _key(client, "long.mkv"), "model": "base", "smooth": 3}
    client.post("/api/project", json={"name": "long", "project": doc})
    job = client.post("/api/render", json={"project": "long"}).json()
    time.sleep(0.5)  # let the child start (cancelling earlier is fine too: it is the same signal)
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["id"] == job["id"]
    assert _follow(client, job)[-1]["state"] == "cancelled"
    renders = client.app.app.state.studio.renders  # type: ignore[attr-defined]
    assert not list(renders.iterdir()), "no partial or output left behind"
    failed = client.get(f"/api/jobs/{job['id']}/download").json()
    assert "has no video to download" in failed["error"]
    long_clip.unlink()


@pytest.mark.parametrize(
    "key",
    [
        "0/../../etc/passwd",
        "0/%2e%2e/x",
        "/etc/passwd",
        "0//etc/passwd",
        "7/clip.mkv",
        "0/",
        "x/clip.mkv",
        "0/a\\b",
    ],
)
def test_paths_outside_the_studio_are_refused(client: TestClient, key: str) -> None:
    response = client.get("/api/frame", params={"key": key, "n": 0})
    assert response.status_code in (403, 404) and "error" in response.json()
    assert "Traceback" not in response.text


def test_links_out_of_a_folder_and_traversal_through_other_doors_are_refused(
    media: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.mkv"
    write_clip(secret, width=32, height=32, frames=2)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "link.mkv").symlink_to(secret)
    client = TestClient(
        build_app(StudioConfig([folder, media / "still.png"], tmp_path / "work")), base_url=BASE
    )
    assert client.get("/api/source", params={"key": "0/link.mkv"}).status_code == 403
    assert client.get("/api/source", params={"key": "1/clip.mkv"}).status_code == 403, (
        "a file root is one file"
    )
    assert client.get("/api/source", params={"key": "1/still.png"}).status_code == 200
    bad = client.get("/api/keyframe/image", params={"project": "p", "image": "../../../secret.mkv"})
    assert bad.status_code == 403
    assert client.post("/api/project", json={"name": "../p", "project": {}}).status_code == 400
    assert client.get("/static/../app.py").status_code == 404
    up = client.post("/api/upload", params={"name": "../../evil.mkv"}, content=secret.read_bytes()).json()
    assert up["name"] == "uploads/evil.mkv" and (tmp_path / "work" / "uploads" / "evil.mkv").is_file()
    assert client.post("/api/upload", params={"name": "run.sh"}, content=b"x").status_code == 400


def test_cross_origin_foreign_hosts_and_oversized_uploads_are_refused(media: Path, tmp_path: Path) -> None:
    client = TestClient(build_app(StudioConfig([media], tmp_path / "w", max_upload=4096)), base_url=BASE)
    assert client.get("/api/info", headers={"origin": BASE}).status_code == 200
    evil = client.post("/api/preview", json={}, headers={"origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.json()["error"]
    assert client.get("/api/info", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    rebound = TestClient(client.app, base_url="http://attacker.example:8765").get("/api/info")
    assert rebound.status_code == 403 and "loopback only" in rebound.json()["error"]
    big = client.post("/api/upload", params={"name": "big.mkv"}, content=b"x" * 5000)
    assert big.status_code == 413 and "limit is" in big.json()["error"]

    def chunks():  # no Content-Length: the cap is counted as the body streams in
        for _ in range(5):
            yield b"x" * 1000

    streamed = client.post("/api/upload", params={"name": "big2.mkv"}, content=chunks())
    assert streamed.status_code == 413
    assert not list((tmp_path / "w" / "uploads").iterdir()), "nothing half-written kept"


def test_a_token_guards_a_studio_reachable_from_elsewhere(media: Path, tmp_path: Path) -> None:
    app = build_app(StudioConfig([media], tmp_path / "w", token="s3cret"))
    client = TestClient(app, base_url="http://192.0.2.7:8765")
    refused = client.get("/api/info")
    assert refused.status_code == 401 and "token" in refused.json()["error"]
    assert client.get("/api/info", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/info", headers={"authorization": "Bearer s3cret"}).status_code == 200
    page = client.get("/", params={"token": "s3cret"})
    assert page.status_code == 200 and "chromaflow studio" in page.text
    assert client.cookies.get("chromaflow_token") == "s3cret"
    assert client.get("/api/info").status_code == 200, "the page's later requests carry the cookie"


def test_errors_reach_the_page_as_messages(client: TestClient) -> None:
    key = _key(client, "clip.mkv")
    cases = [
        client.post("/api/preview", content=b"{not json"),
        client.post("/api/preview", json={"key": key, "n": 99}),
        client.post("/api/preview", json={"key": key, "n": 0, "model": "eccv16"}),
        client.post("/api/preview", json={"key": key, "n": 0, "hints": [{"x": 1, "y": 1, "color": "red"}]}),
        client.post(
            "/api/preview", json={"key": key, "n": 0, "hints": [{"x": 500, "y": 1, "color": "#ff0000"}]}
        ),
        client.get("/api/jobs/none"),
        client.get("/api/nowhere"),
        client.post(
            "/api/keyframe/upload", params={"key": key, "project": "p", "n": 0}, content=b"not an image"
        ),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        message = response.json()["error"]
        assert message and "Traceback" not in message
    assert "eccv16" in cases[2].json()["error"] and "download" in cases[2].json()["error"]
    assert "frame 99 is outside" in cases[1].json()["error"]


def test_a_deepfake_scan_gives_track_curves_faces_and_the_clis_sidecars(shared: Path, tmp_path: Path) -> None:
    from chromaflow.core import registry

    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")
    folder = tmp_path / "faces"
    folder.mkdir()
    write_face_clip(shared, folder / "face.mkv", 3)
    client = TestClient(build_app(StudioConfig([folder], tmp_path / "w")), base_url=BASE)
    job = client.post("/api/deepfake", json={"key": "0/face.mkv"}).json()
    assert _follow(client, job)[-1]["state"] == "done"
    scores = client.get(f"/api/jobs/{job['id']}/scores").json()
    assert scores["tracks"] and all(len(points) == 3 for points in scores["tracks"].values())
    assert all(0 <= s <= 1 for points in scores["tracks"].values() for _, s in points)
    assert len(scores["faces"]["1"][0]["box"]) == 4 and scores["video"]["frames"] == 3
    jsonl = client.get(f"/api/jobs/{job['id']}/download", params={"what": "jsonl"}).text.splitlines()
    assert len(jsonl) == 4 and "video" in json.loads(jsonl[-1])
    assert client.get(f"/api/jobs/{job['id']}/download", params={"what": "vtt"}).text.startswith("WEBVTT")
