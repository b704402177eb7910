"""Every 4xx and 5xx the API can answer, each in the one JSON error shape (see assert_error)."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from server_fake import build_collection, make_client, assert_error  # noqa: E402

from figsearch.errors import (  # noqa: E402
    CollectionLocked,
    EmptyCollection,
    InputError,
    MissingDependency,
    ModelUnavailable,
    NotFound,
)
from figsearch.server.uploads import Limits  # noqa: E402

EP_SHEET = "EP1000003A1-D00002"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server-errors") / "collection", sheets_per_patent=2)


@pytest.fixture(scope="module")
def served(root):
    client, backend = make_client(root)
    with client:
        yield client, backend


@pytest.fixture
def client(served):
    served[1].fail_with = None
    return served[0]


@pytest.fixture
def backend(served):
    return served[1]


def png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge image in a few bytes: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def upload(client, data: bytes, name="query.png", **fields):
    return client.post("/api/search", files={"image": (name, data, "image/png")}, data=fields)


# -- 400 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({}, "nothing to search with"),
        ({"text": "   "}, "nothing to search with"),
        ({"text": "rim", "crop": "0,0,1"}, "four numbers"),
        ({"text": "rim", "crop": "0.5,0,0.2,1"}, "x0 < x1"),
        ({"text": "rim", "crop": "a,b,c,d"}, "four numbers"),
        ({"text": "rim", "crop": "0,0,0.5,0.5"}, "crop needs an image"),
        ({"text": "rim", "date_from": "2022-01-01", "date_to": "2021-01-01"}, "after date_to"),
        ({"figure_id": EP_SHEET, "crop": "0,0,0.01,0.01"}, "at least 8x8"),
    ],
)
def test_bad_queries_are_400(client, fields, needle):
    error = assert_error(client.post("/api/search", data=fields), 400, "bad_input")
    assert needle in error["message"]


def test_page_past_the_end_is_400(client):
    error = assert_error(upload(client, png(), page="3"), 400, "bad_input")
    assert "has 1 page(s); page 3" in error["message"]


@pytest.mark.parametrize(
    "data,name",
    [
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png"),
        (png()[:60], "truncated.png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "broken.jpg"),
        (b"II*\x00" + b"\x00" * 40, "broken.tif"),
        (b"%PDF-1.7\n not really a pdf", "broken.pdf"),
    ],
)
def test_corrupt_uploads_are_400_and_name_the_file(client, data, name):
    error = assert_error(upload(client, data, name=name), 400, "corrupt_input")
    assert name in error["message"]


def test_empty_upload_is_400(client):
    assert_error(upload(client, b""), 400, "bad_input")


def test_backend_input_error_is_400(client, backend):
    backend.fail_with = InputError("query image 'x' is blank")
    error = assert_error(client.get("/api/search", params={"text": "rim"}), 400, "bad_input")
    assert error["message"] == "query image 'x' is blank"


# -- 404 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/figures/NOPE-D00001",
        "/api/figures/NOPE-D00001/image",
        "/api/figures/NOPE-D00001/thumbnail",
        "/api/patents/EP9999999A1",
        "/api/search?figure_id=NOPE-D00001",
        "/api/nothing-here",
        "/no/such/page",
        "/static/missing.js",
        "/static/../../errors.py",
    ],
)
def test_unknown_things_are_404(client, path):
    assert_error(client.get(path), 404, "not_found")


def test_unknown_figure_message_names_it(client):
    error = assert_error(client.get("/api/figures/NOPE-D00001"), 404)
    assert "NOPE-D00001" in error["message"]


def test_figure_files_never_leave_the_collection(tmp_path):
    root = build_collection(tmp_path / "c", sheets_per_patent=1)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    from figsearch.store import Collection

    client, _ = make_client(root)  # the fake backend reads the images before they are tampered with
    with Collection.open(root, write=True) as collection, collection.transaction() as db:
        db.execute("UPDATE figures SET image_path=?, thumbnail_path=? WHERE figure_id=?",
                   ("../secret.png", str(secret), "EP1000003A1-D00001"))
        db.execute("UPDATE figures SET image_path=? WHERE figure_id=?", ("images/gone.png", "USD0900001S-D00001"))
    for which in ("image", "thumbnail"):
        error = assert_error(client.get(f"/api/figures/EP1000003A1-D00001/{which}"), 404, "not_found")
        assert "outside the collection" in error["message"]
    error = assert_error(client.get("/api/figures/USD0900001S-D00001/image"), 404, "not_found")
    assert "missing" in error["message"]


# -- 405 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [("DELETE", "/api/info"), ("PUT", "/api/search"), ("POST", "/api/health")])
def test_wrong_method_is_405(client, method, path):
    assert_error(client.request(method, path), 405, "method_not_allowed")


# -- 409, 501, 503 and 500 from the backend --------------------------------------------------------


@pytest.mark.parametrize(
    "exc,status,code",
    [
        (EmptyCollection("collection has no visual index"), 409, "empty_collection"),
        (CollectionLocked("being written"), 409, "collection_locked"),
        (NotFound("unknown figure id 'X'"), 404, "not_found"),
        (MissingDependency("faiss is needed; pip install 'figsearch[index]'"), 501, "missing_dependency"),
        (ModelUnavailable("CLIP weights are not on this machine"), 503, "model_unavailable"),
    ],
)
def test_domain_errors_keep_their_status_and_code(client, backend, exc, status, code):
    backend.fail_with = exc
    error = assert_error(client.get("/api/search", params={"text": "rim"}), status, code)
    assert error["message"] == str(exc)


def test_unexpected_error_is_500_without_internals(client, backend, caplog):
    backend.fail_with = RuntimeError("secret internal state at /home/x")
    error = assert_error(client.get("/api/search", params={"text": "rim"}), 500, "internal_error")
    assert "secret" not in error["message"]
    assert "secret internal state" in caplog.text


# -- 413 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(root):
    client, _ = make_client(root, limits=Limits(max_upload_bytes=40_000, max_pixels=250_000))
    with client:
        yield client


def test_upload_over_the_byte_limit_is_413(strict):
    noisy = Image.effect_noise((300, 300), 120).convert("L")
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    data = buffer.getvalue()
    assert 40_000 < len(data) < 40_000 + 64 * 1024  # passes the body check, caught by the file check
    error = assert_error(upload(strict, data), 413, "too_large")
    assert "40000" in error["message"]
    # the size and the limit as a reader takes them in, and the option that sets the limit
    assert error["message"] == ("uploaded file 'query.png' is over the upload limit of 39.1 KiB (40000 bytes) "
                                "(figsearch serve --max-upload-mb)")


def test_body_over_the_limit_is_refused_before_parsing(strict):
    data = b"\x89PNG\r\n\x1a\n" + bytes(200_000)
    error = assert_error(upload(strict, data), 413, "too_large")
    # the upload limit is named, not the body's (which leaves 64 KiB for the form's other fields)
    assert re.match(r"the request body is 195\.\d KiB \(2001\d\d bytes\), over", error["message"])
    assert error["message"].endswith("over the upload limit of 39.1 KiB (40000 bytes) (figsearch serve --max-upload-mb)")


def test_chunked_body_over_the_limit_is_413(strict):
    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    response = strict.post("/api/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(response, 413, "too_large")


def test_image_over_the_pixel_limit_is_413(strict):
    error = assert_error(upload(strict, png((600, 600))), 413, "too_large")
    assert "600x600" in error["message"]


def test_decompression_bomb_header_is_refused_without_decoding(client):
    for side in (10_000, 100_000):  # under and over Pillow's own bomb limit
        error = assert_error(upload(client, png_header_only(side, side), name="bomb.png"), 413, "too_large")
        assert "'bomb.png'" in error["message"] and "pixels" in error["message"]


def test_huge_pdf_page_is_rendered_at_the_stored_size(client):
    """A 100 x 100 inch page is rendered by ingest's one PDF policy (longest side 2400 px), not at a dpi."""
    from test_imaging import vector_pdf

    from figsearch.imaging import MAX_SIDE

    response = client.post("/api/preview", files={"image": ("huge.pdf", vector_pdf([(7200, 7200)]))})
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (MAX_SIDE, MAX_SIDE)


def test_pdf_scan_over_the_pixel_limit_is_413(strict):
    # moved from "rendered under the pixel limit": a scanned page is decoded as stored, as ingest
    # stores it (so that an upload is the same pixels), hence refused when the scan is over the limit
    buffer = io.BytesIO()
    Image.new("L", (720, 720), 255).save(buffer, format="PDF", resolution=7.2)
    error = assert_error(upload(strict, buffer.getvalue(), name="huge.pdf", text="rim"), 413, "too_large")
    assert "720x720" in error["message"] and "'huge.pdf'" in error["message"]


# -- 415 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,needle",
    [("GIF", "GIF"), ("BMP", "BMP"), ("WEBP", "WebP"), (None, "not a PNG")],
)
def test_unsupported_formats_are_415(client, fmt, needle):
    if fmt:
        buffer = io.BytesIO()
        Image.new("L", (32, 32), 255).save(buffer, format=fmt)
        data = buffer.getvalue()
    else:
        data = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    error = assert_error(upload(client, data, name="looks-fine.png"), 415, "unsupported_format")
    assert needle in error["message"]


# -- 422 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params,field",
    [
        ({"text": "rim", "k": "0"}, "k"),
        ({"text": "rim", "k": "abc"}, "k"),
        ({"text": "rim", "k": "1000"}, "k"),
        ({"text": "rim", "offset": "-1"}, "offset"),
        ({"text": "rim", "mode": "bogus"}, "mode"),
        ({"text": "rim", "text_weight": "1.5"}, "text_weight"),
        ({"text": "rim", "date_from": "yesterday"}, "date_from"),
        ({"text": "rim", "office": "USA"}, "office"),
        ({"text": "rim", "exclude_query_patent": "maybe"}, "exclude_query_patent"),
        ({"text": "rim", "top_k": "5"}, "top_k"),
    ],
)
def test_malformed_fields_are_422_naming_the_field(client, params, field):
    for response in (client.get("/api/search", params=params), client.post("/api/search", data=params)):
        error = assert_error(response, 422, "invalid_request")
        assert field in [d["field"] for d in error["details"]], error
        assert field in error["message"]


def test_image_field_that_is_not_a_file_is_422(client):
    error = assert_error(client.post("/api/search", data={"image": "not a file"}), 422, "invalid_request")
    assert error["details"][0]["field"] == "image"


def test_json_body_instead_of_a_form_is_4xx(client):
    response = client.post("/api/search", json={"text": "rim"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


def test_preview_without_a_file_is_422(client):
    error = assert_error(client.post("/api/preview", data={"page": "1"}), 422, "invalid_request")
    assert error["details"][0]["field"] == "image"


# -- never a 500 for what a client sends -------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_field_values = st.one_of(st.text(max_size=30), st.sampled_from(["", "0", "-1", "1e309", "nan", "0,0,1,1", "1,1,0,0"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(
        st.sampled_from(["figure_id", "text", "mode", "text_weight", "k", "offset", "date_from", "office",
                         "classification", "crop", "page", "exclude_patents", "exclude_query_patent"]),
        _field_values, max_size=5),
    data=st.one_of(st.none(), st.binary(max_size=64), st.sampled_from([b"\x89PNG\r\n\x1a\n", b"%PDF-", b"II*\x00"])),
)
def test_whatever_the_client_sends_the_answer_is_never_a_500(client, fields, data):
    files = {"image": ("f", data, "application/octet-stream")} if data is not None else None
    response = client.post("/api/search", data=fields, files=files)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and s not in (".", "..")))
def test_any_figure_or_patent_name_is_answered_without_a_500(client, name):
    from urllib.parse import quote

    for path in (f"/api/figures/{quote(name, safe='')}", f"/api/figures/{quote(name, safe='')}/image",
                 f"/api/patents/{quote(name, safe='')}"):
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.text)
        if response.status_code == 404:
            assert_error(response, 404)


# -- host names --------------------------------------------------------------------------------------


def test_a_loopback_server_refuses_foreign_host_names(root):
    from figsearch.server.app import LOOPBACK_HOSTS

    client, _ = make_client(root, allowed_hosts=LOOPBACK_HOSTS)
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        assert_error(client.get("/api/health", headers={"host": host}), 400, "bad_host")
