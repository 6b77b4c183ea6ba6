"""The explorer in a real browser: headless Chromium, driven by Selenium, on the page that
`infogan explore` serves (a subprocess on a free port of 127.0.0.1). The image shown must equal
`infogan.load(run).generate` with the same codes and seed, pixel for pixel, as sliders move,
categories change, and an uploaded MNIST digit sets the codes; bad input shows a message; the
time from a slider's input to the new image is printed.

Without Chromium and chromedriver (Debian: apt-get install chromium chromium-driver) the
browser tests skip. Run as a script, this file takes the README's screenshot:

    python tests/explore/test_explore_browser.py RUN_DIR OUT.png [DIGIT.png]
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import shutil
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
import torch
from PIL import Image
from test_explore_support import start_explorer, stop_explorer, tiny_runs, torch_threads

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
WAIT_S = 30


def make_driver(width: int = 1280, height: int = 1000):
    """Headless Chromium under chromedriver, both from the system (nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--force-color-profile=srgb",  # pixels read back as the PNG holds them
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, mnist_test):
    with torch_threads(1):
        yield tiny_runs(tmp_path_factory, data_dir, mnist_test)


@pytest.fixture(scope="module")
def server(runs):
    """`infogan explore RUN CHECKPOINT --port 0`: the run (step 6) beside its step-3 checkpoint."""
    process, url = start_explorer([runs.run, runs.early])
    yield url
    err = stop_explorer(process)
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no headless Chromium here (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="Selenium is not installed (pip install -e '.[dev]')")
    driver = make_driver()
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, mnist_test):
    path = tmp_path_factory.mktemp("upload") / "seven.png"
    Image.fromarray(mnist_test[0][0, 0].numpy()).save(path)  # the first test digit, a 7
    return path


# -- page helpers ------------------------------------------------------------------------------

READ_IMAGE = """
const img = document.getElementById(arguments[0]);
if (!img || !img.complete || !img.naturalWidth) return null;
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth;
canvas.height = img.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
return {query: img.dataset.query || "", version: Number(img.dataset.version || 0),
        width: canvas.width, height: canvas.height, data: Array.from(data)};
"""


def wait(browser, condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    message = browser.find_element("id", "message").text
    raise AssertionError(f"timed out waiting for {what}; the page's message: {message!r}")


def page_version(browser) -> int:
    """The number of the page's newest state (each change of a control makes a new one)."""
    return browser.execute_script("return window.explore.version")


def shown(browser, element_id: str, after: int = 0) -> dict:
    """The image in `element_id` once it shows the page's newest state, newer than `after`:
    its query, and its pixels (checked to be grey)."""

    def read():
        image = browser.execute_script(READ_IMAGE, element_id)
        newest = page_version(browser)
        return image if image and image["version"] == newest > after else None

    image = wait(browser, read, f"the newest image in #{element_id}")
    rgba = np.array(image["data"], dtype=np.uint8).reshape(image["height"], image["width"], 4)
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 3] == 255).all()
    image["pixels"] = rgba[..., 0]
    return image


def query_codes(query: str) -> tuple[dict, int]:
    values = dict(parse_qsl(query))
    codes = {"c1": int(values["c1"]), "c2": float(values["c2"]), "c3": float(values["c3"])}
    return codes, int(values["seed"])


def generated(model, codes: dict, seed: int) -> np.ndarray:
    return model.generate(1, codes, seed=seed)[0, 0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).numpy()


def assert_both_match(browser, runs, after: int) -> dict:
    """Both models' images equal generate with the codes and seed the page asked for."""
    first = shown(browser, "image-0", after)
    second = shown(browser, "image-1", after)
    assert first["query"] == second["query"].replace("run=1", "run=0")
    codes, seed = query_codes(first["query"])
    assert np.array_equal(first["pixels"], generated(runs.model, codes, seed))
    assert np.array_equal(second["pixels"], generated(runs.early_model, codes, seed))
    return codes


def open_page(browser, url: str) -> None:
    browser.get(url)
    wait(browser, lambda: browser.execute_script("return window.explore && window.explore.ready"), "the page")
    shown(browser, "image-0")


def message(browser, expected: str) -> str:
    element = browser.find_element("id", "message")
    wait(browser, lambda: element.is_displayed() and expected in element.text, f"the message {expected!r}")
    return element.text


# -- the real server, without a browser --------------------------------------------------------


def test_the_cli_serves_the_page_on_the_address_it_printed(server):
    with urllib.request.urlopen(server, timeout=10) as page:
        assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    with urllib.request.urlopen(server + "api/info", timeout=10) as answer:
        info = json.load(answer)
    assert [run["step"] for run in info["runs"]] == [6, 3] and urlsplit(server).hostname == "127.0.0.1"


def test_a_stalled_upload_does_not_block_other_requests(server):
    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=10) as slow:
        slow.sendall(b"POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n\x89PNG")
        answers = []

        def fetch(path):
            with urllib.request.urlopen(server + path, timeout=10) as answer:
                answers.append(answer.status)

        threads = [threading.Thread(target=fetch, args=(f"api/image?c1={k}&seed=3",)) for k in range(4)]
        threads.append(threading.Thread(target=fetch, args=("api/traverse?code=c2&steps=8",)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert answers == [200] * 5


# -- in the browser ----------------------------------------------------------------------------


def test_the_image_is_generate_with_the_codes_set_on_the_page(browser, server, runs):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select

    open_page(browser, server)
    assert assert_both_match(browser, runs, 0) == {"c1": 0, "c2": 0.0, "c3": 0.0}
    assert browser.find_element("css selector", "label[for=code-c1]").text == "c1 (digit)"
    mapping = json.loads((runs.run / "evaluation.json").read_text())["clustering"]["c1"]["mapping"]
    assert Select(browser.find_element("id", "code-c1")).options[0].text.startswith(f"0 → {mapping[0]} | ")

    slider = browser.find_element("id", "code-c2")  # a real drag with the mouse
    before = page_version(browser)
    ActionChains(browser).click_and_hold(slider).move_by_offset(45, 0).release().perform()
    codes = assert_both_match(browser, runs, before)
    assert codes["c2"] == float(slider.get_attribute("value")) and codes["c2"] > 0

    before = page_version(browser)
    Select(browser.find_element("id", "code-c1")).select_by_value("3")
    assert assert_both_match(browser, runs, before)["c1"] == 3

    seed = browser.find_element("id", "seed")
    seed.clear()
    before = page_version(browser)
    seed.send_keys("1234", Keys.TAB)
    codes = assert_both_match(browser, runs, before)
    assert query_codes(browser.execute_script("return document.getElementById('image-0').dataset.query"))[1] == 1234

    # Slider to image: one arrow key at a time, each waited for; the page times every update.
    c3 = browser.find_element("id", "code-c3")
    latencies = []
    for _ in range(12):
        before = page_version(browser)
        c3.send_keys(Keys.ARROW_RIGHT)
        assert_both_match(browser, runs, before)
        timings = browser.execute_script(f"return window.explore.timings.filter((t) => t.version === {before + 1})")
        assert len(timings) == 2  # one image per model
        latencies += [t["ms"] for t in timings]
    median, worst = statistics.median(latencies), max(latencies)
    print(
        f"\nslider to image in Chromium, 2 models side by side: median {median:.0f} ms, max {worst:.0f} ms "
        f"over {len(latencies)} images"
    )
    assert median < 1000, latencies


def test_the_traversal_row_is_the_servers_sweep(browser, server, runs):
    from selenium.webdriver.support.select import Select

    from infogan.explore.runs import traversal_png

    open_page(browser, server)
    before = page_version(browser)
    browser.find_element("css selector", "input[name=mode][value=traverse]").click()
    Select(browser.find_element("id", "sweep-code")).select_by_value("c2")
    image = shown(browser, "image-0", before)
    assert "code=c2" in image["query"] and image["width"] == 10 * 30 + 2
    codes, seed = query_codes(image["query"])
    row = traversal_png(runs.model, codes, seed, "c2", torch.linspace(-2, 2, 10).tolist())
    assert np.array_equal(image["pixels"], np.asarray(Image.open(io.BytesIO(row))))
    assert len(browser.find_elements("css selector", "#outputs figure:first-child .values span")) == 10


def test_an_uploaded_digit_sets_the_codes_q_reads(browser, server, runs, digit_png):
    from infogan.data.inputs import read_image

    open_page(browser, server)
    before = page_version(browser)
    browser.find_element("id", "file").send_keys(str(digit_png))
    wait(browser, lambda: browser.find_elements("css selector", "#encoded table"), "the encoded codes")
    digit = torch.tensor(read_image(digit_png, 1, 28)[None])
    q_codes = {name: value[0].item() for name, value in runs.model.encode(digit).items()}
    codes = assert_both_match(browser, runs, before)
    assert codes == q_codes  # the controls hold Q's codes exactly
    assert browser.find_element("id", "code-c1").get_attribute("value") == str(q_codes["c1"])
    early_codes = {name: value[0].item() for name, value in runs.early_model.encode(digit).items()}
    beside = wait(browser, lambda: browser.execute_script(READ_IMAGE, "encoded-1"), "B's image with its codes")
    pixels = np.array(beside["data"], dtype=np.uint8).reshape(28, 28, 4)[..., 0]
    assert np.array_equal(pixels, generated(runs.early_model, early_codes, 0))


def test_bad_input_shows_a_message_in_the_page(browser, server, tmp_path):
    from selenium.webdriver.common.keys import Keys

    open_page(browser, server)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image at all")
    browser.find_element("id", "file").send_keys(str(notes))
    assert "cannot read 'notes.png' as an image" in message(browser, "cannot read")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:
        handle.truncate(21 * 2**20)
    browser.find_element("id", "file").send_keys(str(huge))
    message(browser, "huge.png is 21.0 MB: the explorer takes images up to 20.0 MB")
    box = browser.find_element("id", "value-c2")
    box.clear()
    box.send_keys("50", Keys.TAB)
    message(browser, "c2 = 50 is out of range")
    low = browser.find_element("id", "low")
    low.clear()
    low.send_keys("5", Keys.TAB)
    message(browser, "the slider range needs two numbers")
    assert "Traceback" not in browser.page_source


def test_two_tabs_work_side_by_side(browser, server, runs):
    from selenium.webdriver.support.select import Select

    open_page(browser, server)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    try:
        open_page(browser, server)
        before = page_version(browser)
        Select(browser.find_element("id", "code-c1")).select_by_value("5")
        assert assert_both_match(browser, runs, before)["c1"] == 5
        browser.switch_to.window(first)
        before = page_version(browser)
        Select(browser.find_element("id", "code-c1")).select_by_value("8")
        assert assert_both_match(browser, runs, before)["c1"] == 8
    finally:
        for handle in browser.window_handles:
            if handle != first:
                browser.switch_to.window(handle)
                browser.close()
        browser.switch_to.window(first)


@contextlib.contextmanager
def served_in_thread(app):
    """`app` served by uvicorn in a thread on a free port of 127.0.0.1; yields its address."""
    import uvicorn

    from infogan.explore.server import address, bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield address(sock, "127.0.0.1")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_a_model_that_cannot_be_loaded_is_a_message_in_its_place(browser, runs, tmp_path, monkeypatch):
    from test_explore import reuse_loaded

    from infogan.explore.app import create_app
    from infogan.explore.runs import load_runs

    reuse_loaded(monkeypatch, runs)
    explored = load_runs([runs.run, tmp_path])
    with served_in_thread(create_app(explored)) as url:
        browser.get(url)
        found = "#outputs figure:nth-child(2) .run-error"
        error = wait(browser, lambda: browser.find_elements("css selector", found), "the second run's error")[0]
        assert error.text == explored[1].error and str(tmp_path) in error.text
        shown(browser, "image-0")


ATTACK = """<!doctype html><title>another site</title><body><script>
window.done = {};
const explorer = EXPLORER;
const image = document.createElement("img");
image.onload = () => { window.done.image = "loaded"; };
image.onerror = () => { window.done.image = "failed"; };
image.src = explorer + "api/traverse?code=c2&steps=32";
document.body.appendChild(image);
const digit = Uint8Array.from(atob(DIGIT), (c) => c.charCodeAt(0));
fetch(explorer + "api/encode", {method: "POST", mode: "no-cors", body: digit})
  .then(() => { window.done.fetch = "answered"; }, () => { window.done.fetch = "failed"; });
</script></body>
"""


@contextlib.contextmanager
def page_elsewhere(html: str):
    """A server on another port of 127.0.0.1 (another origin, the same site) that serves `html`."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # the name http.server calls
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_another_web_page_cannot_drive_the_explorer(browser, runs, monkeypatch, digit_png):
    from test_explore import count_work, reuse_loaded

    from infogan.explore.app import create_app
    from infogan.explore.runs import load_runs

    reuse_loaded(monkeypatch, runs)
    calls = count_work(monkeypatch)
    with served_in_thread(create_app(load_runs([runs.run]))) as url:
        digit = base64.b64encode(digit_png.read_bytes()).decode("ascii")
        attack = ATTACK.replace("EXPLORER", json.dumps(url)).replace("DIGIT", json.dumps(digit))
        with page_elsewhere(attack) as elsewhere:
            assert urlsplit(elsewhere).port != urlsplit(url).port
            browser.get(elsewhere)
            done = wait(browser, lambda: browser.execute_script(
                "return window.done && window.done.image && window.done.fetch ? window.done : null"
            ), "the other page's requests")  # fmt: skip
        assert calls == []  # the explorer did no work for it
        assert done == {"image": "failed", "fetch": "answered"}  # no-cors: an opaque answer, whatever it was
        open_page(browser, url)  # and its own page still works
        assert calls and set(calls) == {"image_png"}


# -- the README's screenshot -------------------------------------------------------------------


def screenshot(run: Path, out: Path, digit: Path | None = None) -> None:
    """Open the explorer on `run`, encode `digit` if given (its codes set the controls), sweep
    the last code in traversal mode, and save the page."""
    from selenium.webdriver.support.select import Select

    process, url = start_explorer([run])
    driver = make_driver(1280, 900)
    try:
        open_page(driver, url)
        if digit is not None:
            driver.find_element("id", "file").send_keys(str(digit.resolve()))
            wait(driver, lambda: driver.execute_script(READ_IMAGE, "encoded-0"), "the encoded image")
        driver.find_element("css selector", "input[name=mode][value=traverse]").click()
        sweep = Select(driver.find_element("id", "sweep-code"))
        sweep.select_by_index(len(sweep.options) - 1)
        shown(driver, "image-0")
        time.sleep(0.5)
        driver.save_screenshot(str(out))
        timings = driver.execute_script("return window.explore.timings.map((t) => t.ms)")
        print(f"wrote {out}; image updates took {', '.join(f'{ms:.0f}' for ms in timings)} ms")
    finally:
        driver.quit()
        stop_explorer(process)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
