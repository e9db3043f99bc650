"""A running ``chromaflow studio`` and a headless Debian ``chromium`` driven by Selenium (``chromium-driver``), for
the studio's browser tests and tools/make_studio_screenshots.py; not a test module."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.host_tools import find_or_install


def browser_tools() -> tuple[str | None, str | None, str]:
    """``(chromium, chromedriver, why missing)``: installed from Debian when absent (as ffmpeg and Blender are)."""
    chromium, why = find_or_install("chromium", "chromium")
    driver, why_driver = find_or_install("chromedriver", "chromium-driver")
    return chromium, driver, why or why_driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_studio(paths: list[Path], workdir: Path, timeout: float = 120.0) -> Iterator[str]:
    """``chromaflow studio PATHS`` on a free loopback port (the real command, in a child); yields its URL."""
    port = free_port()
    log = (workdir.parent / f"studio-{port}.log").open("w+")
    argv = [sys.executable, "-m", "chromaflow.plugins.cli.main", "studio", *map(str, paths),
            "--port", str(port), "--workdir", str(workdir), "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"chromaflow studio exited with {proc.returncode}: {log.read()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("chromaflow studio did not start listening")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def headless_chromium(chromium: str, driver: str, size: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A Selenium driver of headless ``chromium``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={size[0]},{size[1]}", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield browser
    finally:
        browser.quit()
