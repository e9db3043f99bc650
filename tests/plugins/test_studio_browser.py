"""chromaflow studio in a real headless Debian chromium (Selenium + chromium-driver): open a clip, step frames with
the keyboard, place a hint by clicking and see the preview's pixels move toward its colour, bake the frame as a
keyframe, save, render from the page, and check the rendered file equals `chromaflow colorize --project`."""

import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

pytest.importorskip("selenium", reason="the browser tests drive chromium with selenium (the test extra)")

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from chromaflow.filters.pyav.frames import plane_view
from chromaflow.plugins.cli.main import main

from support.pyav_synth import write_clip
from support.studio_browser import browser_tools, headless_chromium, running_studio

W, H, FRAMES = 160, 96, 10
HINT = (100, 40)  # frame pixels (previews are full size for a clip this small)
BLUE = np.array([0, 32, 255], np.float64)


@pytest.fixture(scope="module")
def tools() -> tuple[str, str]:
    chromium, driver, why = browser_tools()
    if chromium is None or driver is None:
        pytest.skip(why)
    return chromium, driver


def _pixels(browser: Any, x: int, y: int, r: int = 2) -> np.ndarray:
    data = browser.execute_script(
        "const c = document.getElementById('frame');"
        "return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], arguments[2], arguments[2]).data);",
        x - r, y - r, 2 * r + 1,
    )  # fmt: skip
    return np.array(data, np.float64).reshape(-1, 4)[:, :3]


def _previews(browser: Any) -> int:
    canvas = browser.find_element(By.ID, "frame")
    return int(canvas.get_attribute("data-previews")) if canvas.get_attribute("data-state") == "ready" else -1


def _message(browser: Any) -> str:
    box = browser.find_element(By.ID, "message")
    return "" if box.get_attribute("hidden") is not None else box.text


def test_hint_keyframe_project_and_render_in_chromium(tools: tuple[str, str], tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    write_clip(media / "clip.mkv", width=W, height=H, frames=FRAMES, gray=True, audio=True)
    work = tmp_path / "work"
    with running_studio([media], work) as url, headless_chromium(*tools) as browser:
        wait = WebDriverWait(browser, 120)
        browser.get(url)
        wait.until(lambda b: len(Select(b.find_element(By.ID, "sources")).options) == 1)
        browser.find_element(By.ID, "open").click()
        wait.until(lambda b: _previews(b) >= 1)
        assert browser.find_element(By.ID, "frame-count").text == str(FRAMES - 1)
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.ARROW_RIGHT)
        wait.until(lambda b: b.find_element(By.ID, "frame-no").text == "1" and _previews(b) >= 2)
        body.send_keys(Keys.ARROW_LEFT)
        wait.until(lambda b: b.find_element(By.ID, "frame-no").text == "0" and _previews(b) >= 3)
        before = _pixels(browser, *HINT)

        browser.execute_script(
            "const c = document.getElementById('colour'); c.value = '#0020ff'; c.dispatchEvent(new Event('change'));"
            "document.getElementById('radius').value = '10';"
        )
        canvas = browser.find_element(By.ID, "frame")
        zoom = canvas.size["width"] / W  # the page fits the frame to its stage
        assert zoom >= 1 and abs(canvas.size["height"] / H - zoom) < 0.02
        dx, dy = (
            (HINT[0] + 0.5) * zoom - canvas.size["width"] / 2,
            (HINT[1] + 0.5) * zoom - canvas.size["height"] / 2,
        )
        ActionChains(browser).move_to_element_with_offset(canvas, round(dx), round(dy)).click().perform()
        wait.until(lambda b: _previews(b) >= 4)
        after = _pixels(browser, *HINT)
        dist_before = np.linalg.norm(before - BLUE, axis=1).mean()
        dist_after = np.linalg.norm(after - BLUE, axis=1).mean()
        assert dist_after < dist_before - 10, (dist_before, dist_after)
        assert "#0020ff" in browser.find_element(By.ID, "hints").text
        assert _message(browser) == ""

        # a second point: dragged 10 frame pixels right, then selected and deleted with the keyboard
        second = (40, 60)
        sx, sy = (
            (second[0] + 0.5) * zoom - canvas.size["width"] / 2,
            (second[1] + 0.5) * zoom - canvas.size["height"] / 2,
        )
        ActionChains(browser).move_to_element_with_offset(canvas, round(sx), round(sy)).click().perform()
        wait.until(lambda b: _previews(b) >= 5 and len(b.find_elements(By.CSS_SELECTOR, "#hints li")) == 2)
        drag = (
            ActionChains(browser).move_to_element_with_offset(canvas, round(sx), round(sy)).click_and_hold()
        )
        drag.move_by_offset(round(10 * zoom), 0).release().perform()
        wait.until(lambda b: _previews(b) >= 6)
        moved = browser.execute_script("return state.frameHints[0][1];")  # the page's own record of the point
        assert abs(moved["x"] - second[0] - 10) < 1.5 and abs(moved["y"] - second[1]) < 1.5, moved
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.DELETE)
        wait.until(lambda b: _previews(b) >= 7 and len(b.find_elements(By.CSS_SELECTOR, "#hints li")) == 1)
        assert np.allclose(_pixels(browser, *HINT), after, atol=2), (
            "the first hint's colour is back as it was"
        )

        name = browser.find_element(By.ID, "project-name")
        name.clear()
        name.send_keys("e2e")
        browser.find_element(By.ID, "bake").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#strip img")) >= 2)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#keys li")) == 1
        assert browser.find_element(By.ID, "hints").text == "", (
            "the frame's hints are baked into its keyframe"
        )

        Select(browser.find_element(By.ID, "render-format")).select_by_value("mkv-lossless")
        browser.find_element(By.ID, "render").click()
        wait.until(
            lambda b: (
                b.find_element(By.ID, "download").get_attribute("hidden") is None or "failed" in _message(b)
            )
        )
        assert browser.find_element(By.ID, "render-state").get_attribute("data-state") == "done", _message(
            browser
        )
        href = browser.find_element(By.ID, "download").get_attribute("href")
        studio_out = tmp_path / "studio.mkv"
        with urllib.request.urlopen(href) as response:
            studio_out.write_bytes(response.read())

    project = work / "projects" / "e2e.json"
    assert (work / "projects" / "e2e.refs" / "key-000000.png").is_file()
    cli_out = tmp_path / "cli.mkv"
    code = main(["colorize", str(media / "clip.mkv"), str(cli_out), "--project", str(project),
                 "--codec", "ffv1", "--quiet"])  # fmt: skip
    assert code == 0
    with av.open(str(studio_out)) as a, av.open(str(cli_out)) as b:
        assert len(a.streams.audio) == 1
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
    assert len(pairs) == FRAMES
    for fa, fb in pairs:
        assert all(np.array_equal(plane_view(fa, p), plane_view(fb, p)) for p in range(3))
    assert any(plane_view(fa, 1).std() > 0 for fa, _ in pairs), "the render has colour"
