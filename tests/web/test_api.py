"""The HTTP API over a real server, including every bad-input case the issue names."""

import base64
import concurrent.futures
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

import cnnlab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digit(runs_root):
    """The first MNIST test digit as PNG bytes, and what the run itself predicts for it."""
    ds = cnnlab.data.load("mnist")
    buf = io.BytesIO()
    Image.fromarray(ds.test.x[0, :, :, 0]).save(buf, format="PNG")
    probs = cnnlab.Run.load(runs_root / "mnist").predict(ds.test.x[:1])[0]
    return buf.getvalue(), probs, ds.test.x[0]


def test_runs_and_run_info(base_url, runs_root):
    newest = max(
        (runs_root / "mnist" / f).stat().st_mtime for f in ("model.json", "model.safetensors", "metrics.jsonl")
    )
    (listed,) = httpx.get(f"{base_url}/api/runs").json()["runs"]
    assert listed["id"] == listed["name"] == "mnist" and listed["modified"] == pytest.approx(newest, abs=1e-3)
    info = httpx.get(f"{base_url}/api/runs/mnist").json()
    assert info["classes"] == list("0123456789") and info["input_shape"] == [28, 28, 1]
    assert info["summary"]["total_params"] == 118_346
    assert info["metrics"][0]["epoch"] == 1
    assert httpx.get(f"{base_url}/docs").status_code == 200
    assert httpx.get(f"{base_url}/openapi.json").json()["info"]["title"] == "cnnlab"


def test_predict_three_ways_agree_with_the_library(base_url, digit):
    png, probs, pixels = digit
    url = f"{base_url}/api/runs/mnist/predict"
    answers = [
        httpx.post(url, files={"file": ("d.png", png, "image/png")}).json(),
        httpx.post(url, json={"image": base64.b64encode(png).decode()}).json(),
        httpx.post(url, json={"pixels": pixels[:, :, 0].tolist()}).json(),
    ]
    for a in answers:
        np.testing.assert_allclose(a["probabilities"], probs, atol=1e-5)
        assert a["top"][0]["class"] == str(int(np.argmax(probs)))
        assert sum(a["probabilities"]) == pytest.approx(1, abs=1e-4)


def test_feature_maps_and_explain(base_url, digit):
    png, _, _ = digit
    r = httpx.post(f"{base_url}/api/runs/mnist/feature-maps", files={"file": ("d.png", png)}).json()
    names = [layer["name"] for layer in r["layers"]]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "dense1", "relu3", "logits"]
    pool1 = r["layers"][2]
    assert pool1["shape"] == [12, 12, 32] and len(base64.b64decode(pool1["data"])) == 12 * 12 * 32
    assert len(r["layers"][-1]["values"]) == 10
    for method in ("gradcam", "saliency", "occlusion", "smoothgrad"):
        e = httpx.post(f"{base_url}/api/runs/mnist/explain?method={method}", files={"file": ("d.png", png)}).json()
        assert np.array(e["heatmap"]).shape == (28, 28) and e["class"] == "7"
    f = httpx.get(f"{base_url}/api/runs/mnist/filters/pool1?channel=3").json()
    assert f["layer"] == "conv1" and f["shape"] == [5, 5, 1]


def test_arith_endpoints_match_the_cli_numbers(base_url):
    r = httpx.post(
        f"{base_url}/api/arith/conv", json={"input": "1 2 3; 4 5 6; 7 8 9", "kernel": "1 1; 1 1", "padding": "same"}
    ).json()
    tf = r["tensorflow"]
    assert tf["padding"] == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert np.array(tf["output"])[0, :, :, 0].tolist() == [[12, 16, 9], [24, 28, 15], [15, 17, 9]]
    assert r["pytorch"]["output_shape"] == [1, 4, 4, 1] and not r["pytorch"]["same_as_tensorflow"]
    p = httpx.post(
        f"{base_url}/api/arith/pool",
        json={"input": [[-12, -16], [-24, -28]], "size": 2, "strides": 1, "padding": "same", "mode": "max"},
    ).json()
    assert np.array(p["tensorflow"]["output"])[0, :, :, 0].tolist() == [[-12, -16], [-24, -28]]


@pytest.mark.parametrize(
    "path,content,message",
    [
        ("conv", b"{", "The body is not valid JSON"),
        ("pool", b"[1, 2]", "The body is a JSON list, not an object"),
        ("conv", b'"text"', "The body is a JSON str, not an object"),
        ("conv", b'{"kernel": "1"}', "'input' is missing"),
        (
            "conv",
            b'{"input": "1 2; 3 4", "kernel": "1", "strides": ["a", 1]}',
            "strides=('a', 1) must hold whole numbers",
        ),
        ("conv", b'{"input": "1 2; 3 4", "kernel": "1", "dilation": [1.5, 1]}', "dilation=(1.5, 1) must hold whole"),
        ("pool", b'{"input": "1 2; 3 4", "size": "big"}', "pool_size='big'"),
        ("pool", b'{"input": "1 2; 3 4", "padding": [[0, "a"], [0, 0]]}', "is neither a word nor two"),
        ("pool", b'{"input": [[1, "x"]]}', "'input' must be a matrix"),
    ],
)
def test_malformed_arithmetic_bodies_are_400s_naming_the_field(base_url, path, content, message):
    r = httpx.post(f"{base_url}/api/arith/{path}", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_run_and_data_errors_say_what_happened_over_http(base_url, runs_root, tmp_path):
    import shutil

    r = httpx.get(f"{base_url}/api/runs/mnist/sample/10000")  # one past the test split
    assert r.status_code == 404 and "outside the test split (0..9999)" in r.json()["error"]
    broken = runs_root / "broken"
    shutil.copytree(runs_root / "mnist", broken)
    (broken / "model.safetensors").unlink()
    try:
        r = httpx.get(f"{base_url}/api/runs/broken")
        assert r.status_code == 409 and "model.safetensors is missing" in r.json()["error"]
    finally:
        shutil.rmtree(broken)


@pytest.mark.parametrize(
    "run_id",
    [
        "..",
        "../mnist",
        "%2e%2e",
        "%2e%2e%2fmnist",
        "..%2f..%2fetc",
        "/etc",
        "%2fetc%2fpasswd",
        "mnist/..",
        "mnist/../mnist",
        "./mnist",
        "MNIST",
    ],
)
def test_run_ids_resolve_only_inside_the_served_folder(base_url, run_id):
    import http.client
    from urllib.parse import urlsplit

    # http.client sends the path exactly as written (httpx would remove dot segments before sending)
    conn = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=10)
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/curves.png"):
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 404, (path, r.status, body[:200])
        assert b"No run" in body or b"Not Found" in body
    conn.close()


def test_symlink_out_of_the_folder_is_refused(runs_root, tmp_path):
    from cnnlab.web.store import RunStore

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.json").write_text("{}")
    (runs_root / "escape").symlink_to(outside, target_is_directory=True)
    try:
        assert "escape" not in RunStore(runs_root).ids()
    finally:
        (runs_root / "escape").unlink()


@pytest.mark.parametrize(
    "kwargs,status,message",
    [
        ({"files": {"file": ("x.txt", b"not an image", "text/plain")}}, 400, "not an image Pillow can read"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "Expected a multipart upload"),
        ({"json": {"nothing": 1}}, 400, "neither 'image'"),
        ({"json": {"image": "%%%"}}, 400, "not valid base64"),
        ({"json": {"pixels": [[1, "a"]]}}, 400, "nested lists of numbers"),
        ({"json": {"pixels": [[1, 2]], "preprocess": "magic"}}, 400, "Unknown preprocess"),
        ({"data": {"other": "x"}, "files": {"nofile": ("a", b"a")}}, 400, "no file"),
        ({"files": {"file": ("big.png", b"0" * 300_000, "image/png")}}, 413, "limited to 200,000"),
    ],
)
def test_bad_uploads_are_4xx_with_a_message(base_url, kwargs, status, message):
    r = httpx.post(f"{base_url}/api/runs/mnist/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_too_many_pixels(base_url):
    buf = io.BytesIO()
    Image.new("L", (1200, 1000)).save(buf, format="PNG")  # tiny file, 1.2 M pixels > the 1 M limit here
    r = httpx.post(f"{base_url}/api/runs/mnist/predict", files={"file": ("wide.png", buf.getvalue())})
    assert r.status_code == 400 and "1200x1000 = 1,200,000 pixels; the limit is 1,000,000" in r.json()["error"]


def test_unknown_method_and_layer(base_url, digit):
    png, _, _ = digit
    r = httpx.post(f"{base_url}/api/runs/mnist/explain?method=lime", files={"file": ("d.png", png)})
    assert r.status_code == 400 and "Expected one of: saliency" in r.json()["error"]
    r = httpx.post(f"{base_url}/api/runs/mnist/feature-maps?layers=conv9", files={"file": ("d.png", png)})
    assert r.status_code == 400 and "No layer named 'conv9'" in r.json()["error"]


def test_concurrent_requests_share_one_model(base_url, digit):
    png, probs, _ = digit

    def call(_):
        return httpx.post(f"{base_url}/api/runs/mnist/predict", files={"file": ("d.png", png)}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(64)))
    assert all(a.status_code == 200 for a in answers)
    assert len({json.dumps(a.json()["probabilities"]) for a in answers}) == 1  # every answer identical
    np.testing.assert_allclose(answers[0].json()["probabilities"], probs, atol=1e-5)


def test_mnist_style_preprocessing_of_a_drawing():
    from cnnlab.data.images import mnist_style

    canvas = np.zeros((280, 280), np.uint8)
    canvas[40:240, 180:200] = 255  # a tall bar off to the right
    out = mnist_style(canvas)[:, :, 0].astype(float)
    rows = np.flatnonzero(out.max(1) > 0)
    assert rows[-1] - rows[0] + 1 == 20  # the longer side fits 20 pixels
    ys, xs = np.indices(out.shape)
    assert (ys * out).sum() / out.sum() == pytest.approx(14, abs=0.6)  # center of mass near the center
    assert (xs * out).sum() / out.sum() == pytest.approx(14, abs=0.6)
    assert mnist_style(np.zeros((50, 50), np.uint8)).max() == 0


def test_serve_warns_off_loopback(monkeypatch, runs_root):
    import uvicorn
    from typer.testing import CliRunner

    from cnnlab.cli import app
    from cnnlab.cli.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    r = CliRunner().invoke(app, ["serve", str(runs_root), "--host", "0.0.0.0", "--port", "9999"])
    assert r.exit_code == 0, r.output
    assert "not a loopback address" in r.stderr and "http://0.0.0.0:9999/" in r.stderr
    r = CliRunner().invoke(app, ["serve", str(runs_root)])
    assert "loopback" not in r.stderr and calls[-1]["host"] == "127.0.0.1"


def test_cli_and_http_agree_on_a_light_background_photo(base_url, runs_root, tmp_path):
    """A dark-on-light RGB photo of a digit: the command line and the server fit it the same way (size, mode,
    inversion) and give the same probabilities, the class of the original light-on-dark digit."""
    from typer.testing import CliRunner

    from cnnlab.cli import app

    ds = cnnlab.data.load("mnist")
    digit = ds.test.x[8]  # (28, 28, 1), light ink on black
    photo = Image.fromarray(255 - digit[:, :, 0]).convert("RGB").resize((200, 200), Image.BILINEAR)
    path = tmp_path / "photo.png"
    photo.save(path)
    cli = CliRunner().invoke(app, ["predict", str(runs_root / "mnist"), str(path), "--json", "--top", "10"])
    assert cli.exit_code == 0, cli.output
    cli_top = json.loads(cli.stdout)[0]
    http = httpx.post(f"{base_url}/api/runs/mnist/predict", files={"file": ("photo.png", path.read_bytes())}).json()
    expected = str(cnnlab.Run.load(runs_root / "mnist").predict(ds.test.x[8:9]).argmax())
    assert cli_top["top"][0]["class"] == http["top"][0]["class"] == expected
    by_class = dict(zip(http["classes"], http["probabilities"], strict=True))
    for entry in cli_top["top"]:
        assert by_class[entry["class"]] == pytest.approx(entry["probability"], abs=2e-6)
    assert any(n.startswith("inverted") for n in cli_top["notes"]) and any(
        n.startswith("inverted") for n in http["notes"]
    )


def test_sample_endpoint_serves_the_runs_own_test_images(base_url):
    ds = cnnlab.data.load("mnist")
    for i in (0, 3, 9999):
        s = httpx.get(f"{base_url}/api/runs/mnist/sample/{i}").json()
        assert s["pixels"] == ds.test.x[i, :, :, 0].tolist() and s["label"] == ds.classes[ds.test.y[i]]


def test_the_real_serve_command_enforces_its_default_limits(runs_root):
    """`cnnlab serve` as a user starts it: 5 MB uploads and 4096x4096 pixels unless told otherwise."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(Path(sys.executable).parent / "cnnlab"), "serve", str(runs_root), "--port", str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api/runs/mnist/predict"
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=1)
                break
            except httpx.TransportError:
                assert time.time() < deadline and server.poll() is None, "cnnlab serve did not start"
                time.sleep(0.2)

        def png(w, h):
            buf = io.BytesIO()
            Image.new("L", (w, h)).save(buf, format="PNG")  # all black: a few kB however large
            return buf.getvalue()

        r = httpx.post(url, files={"file": ("big.bin", b"0" * (5 * 1024 * 1024 + 1))}, timeout=30)
        assert r.status_code == 413 and "limited to 5,242,880" in r.json()["error"]
        r = httpx.post(url, files={"file": ("tall.png", png(4096, 4097))}, timeout=30)
        assert r.status_code == 400 and "4096x4097 = 16,781,312 pixels; the limit is 16,777,216" in r.json()["error"]
        r = httpx.post(url, files={"file": ("square.png", png(4096, 4096))}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_each_run_is_loaded_on_its_first_request_and_kept(runs_root, monkeypatch):
    from cnnlab.web import store as store_module

    loads = []
    real = store_module.Run.load
    monkeypatch.setattr(store_module.Run, "load", lambda path, **kw: loads.append(path) or real(path, **kw))
    store = store_module.RunStore(runs_root)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: store.get("mnist"), range(32)))
    assert len(loads) == 1 and all(r is got[0] for r in got)


def test_curves_of_a_run_trained_from_python_are_drawn_from_its_metrics(base_url, runs_root):
    assert not (runs_root / "mnist" / "curves.png").exists()  # cnnlab.train from Python draws no figure
    r = httpx.get(f"{base_url}/api/runs/mnist/curves.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.width > 400


def test_health_and_explanation_checks_of_a_real_mnist_run(base_url, runs_root, real_data):
    """The served MNIST run recorded its statistics (no layer died in its epoch) and its explanation checks are
    the library's on its first 8 test images. Integrated Gradients from black is flagged there, as Adebayo et
    al. (2018) found gradient-times-input maps to be: the black background gets no attribution whatever the
    weights; Grad-CAM and occlusion change with the weights."""
    from cnnlab.inspect import check_explanations

    health = httpx.get(f"{base_url}/api/runs/mnist/health").json()
    assert health["recorded"] and health["died"] == {} and health["steps"] >= 19
    got = httpx.get(f"{base_url}/api/runs/mnist/explanation-checks", timeout=300).json()
    want = check_explanations(cnnlab.Run.load(runs_root / "mnist"), cnnlab.data.load("mnist").test.x[:8])
    assert [m["flagged"] for m in got["methods"]] == [c.flagged for c in want.checks]
    np.testing.assert_allclose([m["deletion"] for m in got["methods"]], [c.deletion for c in want.checks], atol=1e-6)
    flagged = {m["method"] for m in got["methods"] if m["flagged"]}
    assert "integrated_gradients" in flagged and not flagged & {"gradcam", "occlusion"}
