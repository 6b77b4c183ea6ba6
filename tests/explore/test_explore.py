"""The explorer without a browser: labels from evaluation.json, the routes (images pixel for
pixel against `generate`, Q's codes of an upload, a clear message for every bad input), the
CLI's mistakes; animated traversals; the same labels in `infogan curves`."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from test_explore_support import tiny_runs, torch_threads

from infogan.cli import main
from infogan.core.latent import LatentSpec
from infogan.data.inputs import read_image
from infogan.errors import InfoGANError
from infogan.evaluation.labels import CodeLabel, code_labels, read_labels
from infogan.viz import traversal
from infogan.viz.figures import Sweep, back_and_forth, traversal_frames

pytest.importorskip("starlette", reason="the explorer's tests need the explore extra: pip install -e '.[dev]'")

from starlette.testclient import TestClient  # noqa: E402

from infogan.explore import runs as explore_runs  # noqa: E402
from infogan.explore.app import create_app  # noqa: E402
from infogan.explore.runs import MAX_UPLOAD_BYTES, load_runs  # noqa: E402

MNIST = LatentSpec()  # c1 Cat(10), c2 and c3 continuous


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, mnist_test):
    with torch_threads(1):
        yield tiny_runs(tmp_path_factory, data_dir, mnist_test)


@pytest.fixture(scope="module")
def explored(runs):
    return load_runs([runs.run, runs.early])


@pytest.fixture(scope="module")
def client(explored):
    with TestClient(create_app(explored), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, mnist_test):
    """A real MNIST test digit written as PNG, with its uint8 pixels."""
    pixels = mnist_test[0][0, 0].numpy()
    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray(pixels).save(path)
    return path


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def expected(images: torch.Tensor) -> np.ndarray:
    """Generated images as the uint8 pixels a PNG of them holds (grey: (N, H, W))."""
    return images.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)[:, 0].numpy()


# -- labels ------------------------------------------------------------------------------------


def evaluation(mapping=None, **extra):
    mapping = list(range(10))[::-1] if mapping is None else mapping
    info = {"c1": {"mi_lower_bound": 2.2, "entropy": 2.3}, "c2": {"mi_lower_bound": 0.4, "entropy": 0.69}}
    return {"step": 6, "clustering": {"c1": {"mapping": mapping, "accuracy": 0.9}}, "information": info, **extra}


def test_labels_name_digits_and_clothes_and_carry_the_bounds():
    digits = code_labels(MNIST, "mnist", evaluation())
    assert digits["c1"].title == "c1 (digit)" and digits["c1"].values[0] == "9" and digits["c1"].accuracy == 0.9
    assert digits["c1"].value_title(0) == "0 (9)"
    assert (digits["c2"].title, digits["c2"].bound, digits["c2"].entropy) == ("c2", 0.4, 0.69)
    assert digits["c3"].bound is None
    clothes = code_labels(MNIST, "fashion-mnist", evaluation(mapping=[9, 0, 1, -1]))
    assert clothes["c1"].title == "c1 (class)"
    assert clothes["c1"].values[:4] == ("Ankle boot", "T-shirt/top", "Trouser", "")  # -1: no class matched
    assert clothes["c1"].values[4:] == ("",) * 6  # values Q never predicted


def test_dsprites_codes_take_the_factors_matched_by_mig():
    spec = LatentSpec(noise_dim=5, categorical=(3,), continuous=2)
    info = [[0.9, 0.1, 0.0], [0.0, 0.5, 0.1], [0.0, 0.0, 0.0], [0.1, 0.2, 0.7], [0.0, 0.3, 0.8]]
    mig = {
        "factor_names": ["shape", "scale", "orientation", "pos_x", "pos_y"],
        "code_names": ["c1", "c2", "c3"],
        "mutual_information": info,
        "per_factor": [0.5, 0.3, None, 0.4, 0.5],
    }
    labels = code_labels(spec, "dsprites", evaluation(mapping=[2, 0, 1], disentanglement=mig))
    assert [labels[n].title for n in ("c1", "c2", "c3")] == ["c1 (shape)", "c2 (scale)", "c3 (pos_x, pos_y)"]
    assert labels["c1"].values == ("heart", "square", "ellipse")


def test_missing_damaged_or_stale_evaluations_leave_plain_names_and_say_why(tmp_path):
    missing = read_labels(tmp_path, MNIST, "mnist")
    assert missing.titles()["c1"] == "c1" and "infogan evaluate" in missing.note
    (tmp_path / "evaluation.json").write_text("{not json")
    damaged = read_labels(tmp_path, MNIST, "mnist")
    assert damaged.titles()["c1"] == "c1" and "cannot be used" in damaged.note
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation(mapping=list(range(11)))))
    assert "has 11 values" in read_labels(tmp_path, MNIST, "mnist").note
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation()))
    stale = read_labels(tmp_path, MNIST, "mnist", step=20)
    assert stale.titles()["c1"] == "c1 (digit)" and "step 6" in stale.note and "step 20" in stale.note
    assert read_labels(tmp_path, MNIST, "mnist", step=6).note is None


# -- the routes ----------------------------------------------------------------------------------


def test_the_page_and_its_files_load_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]  # no other page frames it
    for name in ("index.html", "explore.js", "explore.css"):
        text = client.get(f"/static/{name}").text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert client.get("/static/x.js").json()["error"] == "no file 'x.js' here"
    assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding


def test_info_describes_both_models_with_their_labels(client, runs):
    info = client.get("/api/info").json()
    first, second = info["runs"]
    assert (first["step"], second["step"]) == (6, 3)
    assert first["codes"]["c1"]["title"] == "c1 (digit)" and len(first["codes"]["c1"]["values"]) == 10
    report = json.loads((runs.run / "evaluation.json").read_text())
    assert first["codes"]["c2"]["bound"] == report["information"]["c2"]["mi_lower_bound"]
    assert second["codes"]["c1"]["title"] == "c1" and "infogan evaluate" in second["note"]
    assert [c["name"] for c in info["controls"]] == ["c1", "c2", "c3"] and info["range"] == [-2.0, 2.0]


@pytest.mark.parametrize("run", [0, 1])
def test_images_equal_generate_pixel_for_pixel(client, runs, run):
    model = (runs.model, runs.early_model)[run]
    codes = {"c1": 3, "c2": 0.75, "c3": -1.5}
    response = client.get("/api/image", params={**codes, "seed": 42, "run": run})
    assert response.headers["content-type"] == "image/png"
    assert np.array_equal(pixels(response.content), expected(model.generate(1, codes, seed=42))[0])


def test_a_traversal_row_is_the_image_with_one_code_swept(client, runs):
    codes = {"c1": 4, "c2": 0.5, "c3": 1.0}
    row = pixels(client.get("/api/traverse", params={**codes, "seed": 7, "code": "c2", "steps": 5}).content)
    assert row.shape == (28 + 4, 5 * 30 + 2)
    for j, value in enumerate(np.linspace(-2, 2, 5)):
        single = expected(runs.model.generate(1, {**codes, "c2": float(value)}, seed=7))[0]
        tile = row[2:30, 2 + 30 * j : 30 + 30 * j].astype(int)
        assert np.abs(tile - single).max() <= 1  # one batch against ten single images: float rounding
    categorical = pixels(client.get("/api/traverse", params={**codes, "seed": 7, "code": "c1"}).content)
    assert categorical.shape == (32, 10 * 30 + 2)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/image", {"c1": 12}, "code c1 is categorical with values 0..9; got 12"),
        ("/api/image", {"c1": 2.5}, "code c1 is categorical"),
        ("/api/image", {"c2": 50}, "code c2 = 50 is out of range"),
        ("/api/image", {"c2": "nan"}, "c2 must be a finite number"),
        ("/api/image", {"c2": "abc"}, "c2 must be a number; got 'abc'"),
        ("/api/image", {"c9": 1}, "unknown code 'c9'; this model's codes are: c1, c2, c3"),
        ("/api/image", {"seed": -1}, "seed must be a whole number from 0"),
        ("/api/image", {"seed": "x"}, "seed must be a whole number; got 'x'"),
        ("/api/image", {"run": 5}, "run 5 does not exist"),
        ("/api/traverse", {}, "a traversal needs the code to sweep"),
        ("/api/traverse", {"code": "c2", "steps": 100}, "steps must be from 2 to 32"),
        ("/api/traverse", {"code": "c2", "low": 3, "high": 1}, "low < high"),
    ],
)
def test_bad_requests_get_a_message(client, path, params, message):
    response = client.get(path, params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_an_uploaded_digit_gets_the_codes_q_predicts(client, runs, digit_png):
    response = client.post("/api/encode", content=digit_png.read_bytes(), headers={"x-filename": "digit.png"})
    result = response.json()
    image = torch.tensor(read_image(digit_png, 1, 28)[None])
    for model, answer in zip((runs.model, runs.early_model), result["runs"]):
        codes = model.encode(image)
        assert answer["codes"]["c1"] == int(codes["c1"][0])
        assert answer["codes"]["c2"] == float(codes["c2"][0]) and answer["codes"]["c3"] == float(codes["c3"][0])
    preview = pixels(base64.b64decode(result["preview"].split(",", 1)[1]))
    assert np.array_equal(preview, np.asarray(Image.open(digit_png)))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header claiming width x height pixels (a decompression bomb's header), no pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def broken_png() -> bytes:
    """A tiny PNG cut after half its IDAT, then a chunk of type 00 01 02 03: Pillow opens it and
    raises SyntaxError("broken PNG file") on load."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 7).save(buffer, "PNG")
    data = buffer.getvalue()
    start = data.index(b"IDAT")
    pixels = data[start + 4 : start + 4 + struct.unpack(">I", data[start - 4 : start])[0]]
    head = data[: start - 4] + chunk(b"IDAT", pixels[: len(pixels) // 2])
    return head + chunk(b"\x00\x01\x02\x03", b"") + chunk(b"IEND", b"")


def tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 90).save(buffer, "TIFF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "name", "status", "message"),
    [
        (b"just some notes", "notes.txt", 400, "cannot read 'notes.txt' as an image"),
        (b"", "empty.png", 400, "the upload is empty"),
        (bomb_png(100_000, 100_000), "bomb.png", 400, "'bomb.png' is too large (10000000000 pixels)"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cut.png", 400, "cannot read 'cut.png' as an image"),
        (b"0" * (MAX_UPLOAD_BYTES + 1), "huge.png", 413, "the file is over 20 MB"),
        (bomb_png(3000, 3000), "large.png", 400, "'large.png' is too large (3000x3000 pixels)"),
        (broken_png(), "broken.png", 400, "cannot read 'broken.png' as an image: SyntaxError: broken PNG file"),
        (tiff(), "x.png", 400, "cannot read 'x.png' as an image: it is not a PNG or JPEG file"),
    ],
    ids=["not-an-image", "empty", "bomb", "cut-off", "huge", "more-pixels-than-used", "broken-chunk", "tiff"],
)
def test_bad_uploads_get_a_message(client, body, name, status, message):
    response = client.post("/api/encode", content=body, headers={"x-filename": name})
    assert response.status_code == status and message in response.json()["error"]


def test_a_huge_upload_without_a_length_is_cut_off(client):
    def chunks():
        for _ in range(MAX_UPLOAD_BYTES // 2**20 + 2):
            yield b"0" * 2**20

    response = client.post("/api/encode", content=chunks())
    assert response.status_code == 413 and "over 20 MB" in response.json()["error"]


# -- who may ask: this page only, on this machine's names, a few encodes at a time ---------------

ELSEWHERE = {
    "another-port": {"origin": "http://127.0.0.1:9999"},
    "another-host": {"origin": "http://evil.example"},
    "opaque": {"origin": "null"},  # a sandboxed frame or a file:// page
    "cross-site": {"sec-fetch-site": "cross-site"},
    "same-site": {"sec-fetch-site": "same-site"},  # e.g. a page of 127.0.0.1 on another port
    "cross-site-same-origin-header": {"origin": "http://127.0.0.1", "sec-fetch-site": "cross-site"},
}
HERE = {
    "curl": {},
    "same-origin": {"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"},
    "typed-address": {"sec-fetch-site": "none"},
    "origin-only": {"origin": "http://127.0.0.1"},
}


def count_work(monkeypatch) -> list[str]:
    """The names of the explorer's computing functions as each is called."""
    from infogan.explore import app as explore_app

    calls: list[str] = []
    for name in ("image_png", "traversal_png", "encode_upload"):
        real = getattr(explore_app, name)
        monkeypatch.setattr(explore_app, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    return calls


def ask_everything(client, digit_png, headers) -> list:
    png = digit_png.read_bytes()
    return [
        client.get("/api/image", params={"c1": 2}, headers=headers),
        client.get("/api/traverse", params={"code": "c2", "steps": 32}, headers=headers),
        client.post("/api/encode", content=png, headers={**headers, "x-filename": "digit.png"}),
        client.get("/api/info", headers=headers),
    ]


@pytest.mark.parametrize("headers", ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_requests_from_another_site_are_refused_before_any_work(client, monkeypatch, digit_png, headers):
    calls = count_work(monkeypatch)
    for response in ask_everything(client, digit_png, headers):
        assert response.status_code == 403
        assert "comes from a page of another web site" in response.json()["error"]
    assert calls == []
    assert client.get("/", headers=headers).status_code == 200  # a link to the page itself is fine


@pytest.mark.parametrize("headers", HERE.values(), ids=HERE.keys())
def test_the_explorers_own_page_and_tools_like_curl_are_served(client, monkeypatch, digit_png, headers):
    calls = count_work(monkeypatch)
    assert [response.status_code for response in ask_everything(client, digit_png, headers)] == [200] * 4
    assert calls == ["image_png", "traversal_png", "encode_upload"]


@pytest.mark.parametrize("bound", ["127.0.0.2", "::1", "localhost", "127.0.0.1"])
def test_the_host_check_holds_on_every_loopback_address(explored, bound):
    from infogan.explore.server import allowed_hosts, bind

    sock = bind(bound, 0)
    try:
        hosts, port = allowed_hosts(sock, bound), sock.getsockname()[1]
    finally:
        sock.close()
    literal = f"[{bound}]" if ":" in bound else bound
    with TestClient(create_app(explored, hosts=hosts), base_url="http://127.0.0.1") as test_client:
        for forged in ("evil.com", f"evil.com:{port}", "127.0.0.3", "[::2]", "example.localhost"):
            assert test_client.get("/api/info", headers={"host": forged}).status_code == 400, forged
        for host in (literal, f"{literal}:{port}", "localhost", f"localhost:{port}", "127.0.0.1", f"[::1]:{port}"):
            assert test_client.get("/api/info", headers={"host": host}).status_code == 200, host


@pytest.mark.parametrize(("bound", "shared"), [("127.0.0.2", False), ("::1", False), ("0.0.0.0", True)])
def test_explore_says_other_machines_can_use_it_only_when_they_can(runs, monkeypatch, capsys, bound, shared):
    from infogan.explore import server as explore_server

    reuse_loaded(monkeypatch, runs)
    served = []
    monkeypatch.setattr(explore_server, "serve", lambda app, sock, host, announce: served.append(app))
    assert main(["explore", str(runs.run), "--host", bound, "--port", "0"]) == 0
    assert ("other machines" in capsys.readouterr().err) == shared
    with TestClient(served[0], base_url="http://127.0.0.1") as test_client:
        assert test_client.get("/api/info", headers={"host": "evil.com"}).status_code == (200 if shared else 400)


def test_encodes_run_a_few_at_a_time_and_the_others_wait_or_get_503(explored, monkeypatch):
    import threading
    import time

    from infogan.explore import app as explore_app

    monkeypatch.setattr(explore_app, "MAX_ENCODES", 2)
    monkeypatch.setattr(explore_app, "ENCODE_WAIT_S", 0.5)
    running, release = threading.Semaphore(0), threading.Event()

    def slow_encode(runs, payload, filename):
        running.release()
        release.wait(10)
        return {"runs": [], "preview": filename}

    monkeypatch.setattr(explore_app, "encode_upload", slow_encode)
    answers = {}
    with TestClient(create_app(explored), base_url="http://127.0.0.1") as test_client:

        def post(name):
            answers[name] = test_client.post("/api/encode", content=b"x", headers={"x-filename": name})

        threads = [threading.Thread(target=post, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        assert running.acquire(timeout=10) and running.acquire(timeout=10)  # both slots taken
        started = time.monotonic()
        busy = test_client.post("/api/encode", content=b"x")
        assert busy.status_code == 503 and "busy encoding 2 other images" in busy.json()["error"]
        assert 0.4 < time.monotonic() - started < 5 and not running.acquire(timeout=0)  # it waited, did no work
        monkeypatch.setattr(explore_app, "ENCODE_WAIT_S", 10)
        threads.append(threading.Thread(target=post, args=("c",)))
        threads[-1].start()
        time.sleep(0.2)
        release.set()  # a and b finish; c, waiting, gets its turn
        for thread in threads:
            thread.join(10)
    assert {name: answer.status_code for name, answer in answers.items()} == {"a": 200, "b": 200, "c": 200}


def reuse_loaded(monkeypatch, runs):
    """load_runs gets the session's model for the run instead of loading it again."""
    real = explore_runs.load
    reuse = lambda path, device: runs.model if path == runs.run else real(path, device)  # noqa: E731
    monkeypatch.setattr(explore_runs, "load", reuse)


def test_a_run_without_a_model_is_a_message_in_the_page(runs, tmp_path, monkeypatch):
    reuse_loaded(monkeypatch, runs)
    missing = load_runs([runs.run, tmp_path])
    assert missing[1].model is None and str(tmp_path) in missing[1].error
    with TestClient(create_app(missing), base_url="http://127.0.0.1") as test_client:
        assert test_client.get("/api/info").json()["runs"][1]["error"] == missing[1].error
        answer = test_client.get("/api/image", params={"run": 1})
        assert answer.status_code == 400 and "could not be loaded" in answer.json()["error"]
    with pytest.raises(InfoGANError, match="cannot explore"):
        load_runs([tmp_path])


def test_models_with_other_codes_are_refused_side_by_side(runs, monkeypatch):
    other = runs.early_model.__class__.__new__(runs.early_model.__class__)
    other.__dict__.update(runs.early_model.__dict__, spec=LatentSpec(categorical=(3,), continuous=2))
    monkeypatch.setattr(explore_runs, "load", lambda path, device: other if path == "b" else runs.model)
    with pytest.raises(InfoGANError, match="need the same codes"):
        load_runs([runs.run, "b"])


# -- the CLI -----------------------------------------------------------------------------------


def test_explore_mistakes_get_a_message(runs, tmp_path, monkeypatch, capsys):
    assert main(["explore", str(tmp_path), "--port", "0"]) == 2
    assert f"cannot explore {tmp_path}" in capsys.readouterr().err
    assert main(["explore", str(runs.run), "--port", "70000"]) == 2
    assert "--port must be from 0 to 65535" in capsys.readouterr().err
    assert main(["explore", str(runs.run), "--range", "3", "1"]) == 2
    assert "LOW < HIGH" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        assert main(["explore", str(runs.run), "--port", str(busy.getsockname()[1])]) == 2
        assert "choose another --port" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "infogan.explore.server", None)  # as if Starlette were not installed
    assert main(["explore", str(runs.run), "--port", "0"]) == 2
    assert "pip install 'infogan[explore]'" in capsys.readouterr().err


# -- animated traversals -------------------------------------------------------------------------


def test_frames_sweep_each_code_back_and_forth():
    assert back_and_forth(4) == [0.0, 0.5, 1.0, 0.5]
    shades = torch.linspace(0, 1, 3).repeat(2)  # 2 rows x 3 columns, column j has shade j / 2
    images = shades.view(6, 1, 1, 1).expand(6, 1, 4, 4)
    frames = traversal_frames([Sweep("c2", images, 3, ("-1", "0", "1"))], scale=1)
    assert len(frames) == 4
    greys = [np.asarray(frame.convert("L"))[18 + 2 + 1, 2 + 1] for frame in frames]  # below the caption strip
    assert greys == [0, 128, 255, 128]


def test_traverse_writes_a_gif_with_one_panel_per_code(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("infogan.cli.images.load", lambda path, device: runs.model)  # the session's model, loaded once
    out = tmp_path / "sweep.gif"
    assert main(["traverse", str(runs.run), "--out", str(out), "--rows", "3", "--frame-ms", "80"]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 18 and gif.info["loop"] == 0 and gif.info["duration"] == 80
        assert gif.size == (2 * (10 * 30 + 2), 3 * (18 + 2 * 32) + 2 * 6)  # c2, c3: one image per value of c1
        first = np.asarray(gif.convert("L"))
        gif.seek(9)
        assert not np.array_equal(first, np.asarray(gif.convert("L")))
    assert main(["traverse", str(runs.run), "--out", str(tmp_path / "x.bmp")]) == 2
    assert "must end in .png, .jpg, .jpeg or .gif" in capsys.readouterr().err


def test_curves_and_traverse_use_the_labels_of_evaluation_json(runs, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("infogan.viz.curves.plot_curves", lambda records, config, out, titles: seen.update(titles))
    assert main(["curves", str(runs.run), "--out", str(tmp_path / "c.png")]) == 0
    assert seen == {"c1": "c1 (digit)", "c2": "c2", "c3": "c3"}
    label = CodeLabel("c1", ("digit",), tuple("0123456789"[::-1]))
    assert traversal._sweep(runs.model, label, torch.zeros(10, 1, 2, 2), 10, (-2, 2)).captions[0] == "0 (9)"


def test_curves_legends_name_the_codes(runs, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from infogan.config import resolve_config
    from infogan.viz.curves import plot_curves, read_metrics

    made = []
    subplots = plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: made.append(subplots(*a, **k)) or made[-1])
    config = resolve_config(None, runs.run / "config.yaml")
    plot_curves(read_metrics(runs.run / "metrics.jsonl"), config, tmp_path / "c.png", {"c1": "c1 (digit)"})
    legends = [label for axes in made[0][1] for label in axes.get_legend_handles_labels()[1]]
    assert "c1 (digit): H(c) - CE" in legends and "c2" in legends


@pytest.mark.parametrize(
    "path",
    ["/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static/app.py", "/../app.py"],
)
def test_paths_outside_the_pages_files_are_not_served(client, path):
    """Held in the second outside fault test: the page's files are a fixed list read from the
    package, so no path reaches another file."""
    response = client.get(path)
    assert response.status_code == 404
    assert b"import" not in response.content and b"[project]" not in response.content


@pytest.mark.parametrize("host", ["127.0.0.1.evil.example", "localhost.evil.example", "evil.example#@127.0.0.1", ""])
def test_host_names_that_only_look_local_are_refused(client, host):
    """Held in the second outside fault test: DNS rebinding with names built to look local."""
    assert client.get("/api/info", headers={"host": host}).status_code == 400
