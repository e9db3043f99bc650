"""Screenshots of chromaflow studio for the README (docs/images/studio-*.png), taken in headless Debian chromium.

Starts ``chromaflow studio`` on a gray clip made from a DAVIS sequence (and a few frames of a DFDC clip for the
deepfake view), drives the page with Selenium as a person would (hints by clicking, a baked keyframe, a scan) and
saves what the page shows. Needs ../shared (DAVIS, DFDC, MesoNet weights), chromium and chromium-driver.

    python tools/make_studio_screenshots.py [--out docs/images] [--sequence dog] [--frames 24]
"""

import argparse
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.studio_browser import browser_tools, headless_chromium, running_studio  # noqa: E402

SHARED = Path(os.environ.get("CHROMAFLOW_SHARED", ROOT.parent / "shared"))
SIZE = (1180, 1040)  # the browser window: the screenshots' size
HINTS = [(330, 300, "#d9b27a"), (700, 200, "#4f8a3a"), (120, 440, "#8a7658")]  # fur, grass, ground (854x480)


def gray_clip(sequence: str, frames: int, out: Path) -> None:
    paths = sorted((SHARED / "data" / "davis-dev" / sequence).glob("*.jpg"))[:frames]
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
        for i, p in enumerate(paths):
            gray = cv2.cvtColor(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2RGB)
            frame = av.VideoFrame.from_ndarray(cv2.resize(gray, (854, 480)), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts, frame.time_base = i, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def face_clip(out: Path, frames: int = 12) -> None:
    with av.open(str(SHARED / "data/deepfake-dev/dfdc/lynaeydofd.mp4")) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=30, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = 960, 540, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            small = frame.reformat(width=960, height=540, format="yuv420p")
            small.pts, small.time_base = i, Fraction(1, 30)
            dst.mux(stream.encode(small))
        dst.mux(stream.encode(None))


def wait_for(browser: Any, test: Any, timeout: float = 300.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(test)


def previews(browser: Any) -> int:
    from selenium.webdriver.common.by import By

    canvas = browser.find_element(By.ID, "frame")
    return int(canvas.get_attribute("data-previews")) if canvas.get_attribute("data-state") == "ready" else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--sequence", default="dog")
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    chromium, driver, why = browser_tools()
    if chromium is None or driver is None:
        raise SystemExit(f"no browser: {why}")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from chromaflow.core import registry

    registry.import_file("meso4-df", SHARED / "models/mesonet/Meso4_DF.h5")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        gray_clip(args.sequence, args.frames, media / f"{args.sequence}-gray.mp4")
        face_clip(media / "interview.mp4")
        with (
            running_studio([media], Path(tmp) / "work") as url,
            headless_chromium(chromium, driver, SIZE) as b,
        ):
            b.get(url)
            wait_for(b, lambda b: len(Select(b.find_element(By.ID, "sources")).options) == 2)
            Select(b.find_element(By.ID, "sources")).select_by_visible_text(f"{args.sequence}-gray.mp4")
            b.find_element(By.ID, "open").click()
            wait_for(b, lambda b: previews(b) >= 1)
            canvas = b.find_element(By.ID, "frame")
            scale = canvas.size["width"] / 854
            b.execute_script("document.getElementById('radius').value = '12';")
            for count, (x, y, colour) in enumerate(HINTS, start=2):
                b.execute_script("document.getElementById('colour').value = arguments[0];", colour)
                ActionChains(b).move_to_element_with_offset(
                    canvas, round((x - 427) * scale), round((y - 240) * scale)
                ).click().perform()
                wait_for(b, lambda b, c=count: previews(b) >= c)
            b.save_screenshot(str(args.out / "studio-hints.png"))
            Select(b.find_element(By.ID, "view")).select_by_value("split")
            done = previews(b)
            b.find_element(By.ID, "bake").click()
            wait_for(
                b, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#strip img")) >= 2 and previews(b) > done
            )
            b.save_screenshot(str(args.out / "studio-keyframe.png"))
            Select(b.find_element(By.ID, "sources")).select_by_visible_text("interview.mp4")
            b.find_element(By.ID, "open").click()
            wait_for(b, lambda b: previews(b) >= 1)
            b.find_element(By.ID, "scan").click()
            wait_for(b, lambda b: "video score" in b.find_element(By.ID, "scan-state").text)
            scores = b.find_element(By.ID, "scores")
            done = previews(b)
            ActionChains(b).move_to_element_with_offset(
                scores, scores.size["width"] // 4, 0
            ).click().perform()
            wait_for(b, lambda b: previews(b) > done)
            b.execute_script("window.scrollTo(0, 0);")
            b.save_screenshot(str(args.out / "studio-deepfake.png"))
    for name in ("studio-hints.png", "studio-keyframe.png", "studio-deepfake.png"):
        shot = cv2.imread(str(args.out / name))
        cv2.imwrite(str(args.out / name), shot, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
