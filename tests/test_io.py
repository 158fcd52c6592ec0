"""Loading images: formats, modes, EXIF orientation, URLs, and every kind of bad input."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

import facelab
from facelab.errors import (
    CorruptImageError,
    EmptyImageError,
    HTTPStatusError,
    ImageNotFoundError,
    ImageTooLargeError,
    InputError,
    UnsupportedImageError,
    URLContentTypeError,
    URLError,
    URLTimeoutError,
)
from facelab.io import iter_image_paths, load_image


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    return b.getvalue()


@pytest.fixture(scope="module")
def rgb() -> Image.Image:
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30] = (200, 10, 10)
    a[:, 30:] = (10, 200, 10)
    return Image.fromarray(a)


# --- formats and modes --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "PPM", "TIFF"])
def test_formats_decode_to_rgb(rgb, fmt):
    arr = load_image(encode(rgb, fmt))
    assert arr.shape == (40, 60, 3) and arr.dtype == np.uint8
    assert arr[20, 5, 0] > 150 and arr[20, 50, 1] > 150  # red left, green right survived


def test_pgm_grayscale_from_orl(tmp_path):
    from conftest import data_path

    arr = load_image(data_path("orl", "s1", "1.pgm"))
    assert arr.shape == (112, 92, 3)
    assert (arr[..., 0] == arr[..., 1]).all()


def test_extensionless_gif_from_yale_is_found_and_loaded():
    from conftest import data_path

    root = data_path("yale")
    found = list(iter_image_paths(root))
    assert len(found) >= 150 and any(p.endswith("subject01.happy") for p in found)
    assert load_image(found[0]).ndim == 3


def test_grayscale_and_rgba_and_16bit(tmp_path):
    g = Image.fromarray(np.full((10, 12), 77, np.uint8), "L")
    assert load_image(encode(g, "PNG"))[0, 0].tolist() == [77, 77, 77]
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 6:, 3] = 255
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[0, 0].tolist() == [255, 255, 255]  # transparent -> white background
    assert out[0, 11].tolist() == [255, 0, 0]
    a16 = np.full((10, 12), 65535, np.uint16)
    a16[:, :6] = 257 * 100
    out = load_image(encode(Image.fromarray(a16), "PNG"))
    assert out[0, 0, 0] == 100 and out[0, 11, 0] == 255


def test_exif_orientation_is_applied(rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(rgb, "JPEG", exif=exif.tobytes())
    arr = load_image(data)
    assert arr.shape == (60, 40, 3)
    # the red left half of the stored image ends up on top after the rotation
    assert arr[5, 20, 0] > 150 and arr[55, 20, 1] > 150


def test_numpy_inputs():
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.ones((5, 6, 3), np.float32))[0, 0, 0] == 255
    assert load_image(np.full((5, 6, 3), 65535, np.uint16))[0, 0, 0] == 255
    with pytest.raises(InputError, match="not an image"):
        load_image(np.zeros((5, 6, 7), np.uint8))
    with pytest.raises(EmptyImageError):
        load_image(np.zeros((0, 6, 3), np.uint8))


# --- bad input ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageNotFoundError, match="no such file") as e:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(EmptyImageError, match="empty.jpg: empty file"):
        load_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is text, not a JPEG")
    with pytest.raises(UnsupportedImageError, match="not an image"):
        load_image(p)


def test_truncated_jpeg(tmp_path, rgb):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    data = encode(big, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptImageError, match="truncated or damaged"):
        load_image(p)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_header(w: int, h: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))


def test_zero_size_image():
    data = _png_header(0, 10) + _png_chunk(b"IEND", b"")
    with pytest.raises(InputError):
        load_image(data)


def test_decompression_bomb_is_refused_before_decoding():
    # a 60000 x 60000 PNG header (3.6 gigapixels) with almost no data
    data = _png_header(60000, 60000) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _png_chunk(b"IEND", b"")
    t = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="over the cap"):
        load_image(data)
    assert time.perf_counter() - t < 2.0


def test_pixel_cap_is_configurable(rgb):
    with pytest.raises(ImageTooLargeError):
        load_image(encode(rgb, "PNG"), max_pixels=100)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)


def test_unsupported_type():
    with pytest.raises(InputError, match="cannot load an image from a int"):
        load_image(42)


# --- URLs -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    jpeg = b""

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/face.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(self.jpeg)))
            self.end_headers()
            self.wfile.write(self.jpeg)
        elif self.path == "/page.html":
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/slow.jpg":
            time.sleep(3)
            self.send_response(200)
            self.end_headers()
        elif self.path == "/huge.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(10**10))
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture(scope="module")
def server(rgb):
    _Handler.jpeg = encode(rgb, "JPEG")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_url_image(server):
    assert load_image(f"{server}/face.jpg").shape == (40, 60, 3)


def test_url_404(server):
    with pytest.raises(HTTPStatusError, match="HTTP 404") as e:
        load_image(f"{server}/missing.jpg")
    assert e.value.status == 404


def test_url_not_an_image(server):
    with pytest.raises(URLContentTypeError, match="text/html"):
        load_image(f"{server}/page.html")


def test_url_timeout(server):
    with pytest.raises(URLTimeoutError, match="no answer within"):
        load_image(f"{server}/slow.jpg", timeout=0.5)


def test_url_too_big(server):
    with pytest.raises(URLError, match="over the cap"):
        load_image(f"{server}/huge.jpg")


def test_url_bad_scheme_and_unreachable():
    with pytest.raises(URLError, match="unsupported URL scheme"):
        load_image("ftp://example.com/a.jpg")
    with pytest.raises(URLError, match="cannot connect"):
        load_image("http://127.0.0.1:9/a.jpg", timeout=2)


def test_top_level_api_accepts_every_source(server, fr_examples):
    data = (fr_examples / "obama.jpg").read_bytes()
    for src in (fr_examples / "obama.jpg", str(fr_examples / "obama.jpg"), data, Image.open(io.BytesIO(data))):
        assert len(facelab.detect(src)) == 1


def test_every_entry_point_takes_every_source(server, fr_examples, tmp_path):
    """FaceAnalysis.get, Gallery.enroll/identify and analyze: path, str, URL, bytes, array, PIL image (issue 17 point 1)."""
    from facelab.gallery import Gallery

    path = fr_examples / "obama.jpg"
    data = path.read_bytes()
    array = facelab.load_image(path)
    url = f"{server}/face.jpg"
    _Handler.jpeg, before = data, _Handler.jpeg
    sources = (path, str(path), url, data, array, Image.open(io.BytesIO(data)))
    fa = facelab.FaceAnalysis(landmarks=None)
    boxes = [[round(v) for v in f.box.to_dict().values()] for f in fa.get(array)]
    assert len(boxes) == 1
    for src in sources:
        assert [[round(v) for v in f.box.to_dict().values()] for f in fa.get(src)] == boxes, type(src)
        assert len(facelab.analyze(src)) == 1
    with Gallery(tmp_path / "g.db") as g:
        assert [r.status for r in g.enroll("obama", str(path))] == ["added"]  # one path, not a sequence of characters
        for src in sources:
            assert [f.identity.name for f in g.identify(src)] == ["obama"], type(src)
    _Handler.jpeg = before


def test_symlinked_folders_are_followed_once_without_looping(tmp_path, fr_examples):
    """Person folders that are symlinks are found by every folder reader; a link back up does not loop (issue 17 point 2)."""
    from facelab.gallery import known_people_from_folder
    from facelab.train.dataset import identity_dataset

    elsewhere = tmp_path / "elsewhere"
    for name in ("obama", "biden"):
        (elsewhere / name).mkdir(parents=True)
        (elsewhere / name / f"{name}.jpg").symlink_to(fr_examples / f"{name}.jpg")
    people = tmp_path / "people"
    people.mkdir()
    (people / "obama").symlink_to(elsewhere / "obama", target_is_directory=True)
    (people / "biden").symlink_to(elsewhere / "biden", target_is_directory=True)
    (people / "obama" / "loop").symlink_to(people, target_is_directory=True)  # obama/loop -> people/ (a cycle)
    found = list(facelab.iter_image_paths(people))
    assert [os.path.relpath(p, people) for p in found] == ["biden/biden.jpg", "obama/obama.jpg"]
    assert sorted(i.label for i in identity_dataset(people)) == ["biden", "obama"]
    assert sorted(n for n, _ in known_people_from_folder(people)) == ["biden", "obama"]
