"""The studio in a real headless Chromium (Debian's package, driven by Playwright): load the page on tiny models,
see messages for a click before analysis and a non-image upload, analyse the bundled samples, override one
match by clicking, stylize, and check the result image and the batch command shown."""
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from stylex.matching import read_overrides
from stylex.studio_app.canvas import CAPTION, GAP
from tests.e2e.cli import cli_env, free_port

SETTINGS = ["data.resolution=64", "method.regions.n_init=2", "method.num_steps=2", "method.iters_per_step=1"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip("no Chromium on this machine: install Debian's package (apt-get install -y chromium; "
                    ".ci/run does when it can) to run the browser test")
    return found


def wait_for_server(url: str, server: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the studio exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the studio did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def click_picture(page, selector: str, x: float, y: float) -> None:
    """Click pixel (x, y) of an image as it is stored (the page shows it scaled to fit, never enlarged)."""
    box = page.evaluate("""(sel) => { const img = document.querySelector(sel); const r = img.getBoundingClientRect();
        return {x: r.left, y: r.top, w: r.width, h: r.height, nw: img.naturalWidth, nh: img.naturalHeight}; }""",
                        selector)
    scale = min(box["w"] / box["nw"], box["h"] / box["nh"], 1)
    page.mouse.click(box["x"] + (box["w"] - box["nw"] * scale) / 2 + x * scale,
                     box["y"] + (box["h"] - box["nh"] * scale) / 2 + y * scale)


def status_says(page, text: str, timeout: float = 120) -> str:
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=text,
                           timeout=timeout * 1000)
    return page.inner_text("#status")


@pytest.mark.slow
def test_two_images_to_an_edited_stylized_result_and_its_batch_command(tmp_path):
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra: pip install -e .[dev]")
    out, port = tmp_path / "studio", free_port()
    log = tmp_path / "studio.log"
    env = cli_env({"STYLEX_CACHE": str(tmp_path / "cache")})
    with open(log, "w") as sink:
        server = subprocess.Popen([sys.executable, "-m", "stylex.studio", f"studio.port={port}", f"hydra.run.dir={out}",
                                   *SETTINGS], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_server(url, server, log)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(url)
            page.wait_for_selector("#analyse")

            page.click("#stylize")  # before any analysis: a message, not a crash
            assert "nothing analysed yet" in status_says(page, "nothing analysed yet")
            (tmp_path / "notes.png").write_text("not a picture")
            page.set_input_files("#content-upload input[type=file]", str(tmp_path / "notes.png"))
            assert "notes.png: not an image" in status_says(page, "not an image")

            page.click("#analyse")  # the bundled samples: astronaut against four references
            assert "astronaut__gallery" in status_says(page, "content regions")
            page.wait_for_function("document.querySelector('#canvas img') && "
                                   "document.querySelector('#canvas img').naturalWidth > 0")
            width = page.evaluate("document.querySelector('#canvas img').naturalWidth")
            assert width > 384 + GAP
            click_picture(page, "#canvas img", 192, CAPTION + 192)  # the content's centre
            status_says(page, "Selected content region")
            click_picture(page, "#canvas img", 384 + GAP + 40, CAPTION + 40)  # reference 0
            assert "hubble_deep_field" in status_says(page, "takes its style from")
            command = page.input_value("#command textarea")
            for part in ("python -m stylex.run", "experiment=gallery_lcm", "debug=smoke", *SETTINGS,
                         "astronaut.png", "hubble_deep_field.jpg", "method.matching.overrides="):
                assert part in command
            assert "studio.port" not in command and "hydra.run.dir" not in command

            page.click("#stylize")
            status_says(page, "Stylized.", timeout=180)
            page.wait_for_function("document.querySelector('#result img') && "
                                   "document.querySelector('#result img').naturalWidth > 0")
            if os.environ.get("STYLEX_STUDIO_SCREENSHOT"):
                page.screenshot(path=os.environ["STYLEX_STUDIO_SCREENSHOT"], full_page=True)
            assert page.locator("#downloads").inner_text().count("astronaut__gallery") == 2  # image and sidecar
            browser.close()
        overrides = Path(command.split("method.matching.overrides=")[1].split()[0])
        result = overrides.parent / "images" / "astronaut__gallery.png"
        assert overrides.is_relative_to(out) and Image.open(result).size == (64, 64)
        assert read_overrides(overrides)["astronaut"][0][0] == "hubble_deep_field"
        assert server.poll() is None, "the server stopped"
        assert (out / ".gradio").is_dir()  # Gradio's own files stay in the output folder too
    finally:
        server.terminate()
        server.wait(timeout=30)
