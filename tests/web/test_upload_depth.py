"""A 16-bit upload is scaled by its range, and the server's answer says so (issue 14 #10)."""

import io

import httpx
import numpy as np
from PIL import Image


def test_a_16_bit_upload_is_scaled_and_the_server_says_so(base_url):
    buf = io.BytesIO()
    Image.fromarray(np.linspace(0, 4095, 28 * 28).reshape(28, 28).astype(np.uint16)).save(buf, format="PNG")
    r = httpx.post(f"{base_url}/api/runs/mnist/predict", files={"file": ("deep.png", buf.getvalue())})
    assert r.status_code == 200
    assert "deep.png is a 16-bit image (values 0..4095); scaled to 0..255" in r.json()["notes"]
