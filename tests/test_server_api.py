"""The HTTP API over a fake backend and a tiny synthetic collection: every endpoint, what it
passes to the backend and what it answers. Error statuses are in test_server_errors.py."""

from __future__ import annotations

import io

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from server_fake import PATENTS, FakeBackend, build_collection, make_client  # noqa: E402

from figsearch.server.schemas import register_links  # noqa: E402

EP = "EP1000003A1"
EP_SHEET2 = f"{EP}-D00002"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server") / "collection")


@pytest.fixture(scope="module")
def served(root):
    client, backend = make_client(root)
    with client:
        yield client, backend


@pytest.fixture
def client(served):
    return served[0]


@pytest.fixture
def backend(served):
    served[1].calls.clear()
    served[1].fail_with = None
    return served[1]


def sheet(root, figure_id: str = EP_SHEET2) -> Image.Image:
    pub, key = figure_id.rsplit("-", 1)
    return Image.open(root / "images" / pub / f"{key}.png").convert("L")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


# -- health, info, page, schema ----------------------------------------------------------------


def test_health_and_info(client):
    assert client.get("/api/health").json() == {"status": "ok", "collection": "collection"}
    info = client.get("/api/info").json()
    assert info["patents"] == 4 and info["figures"] == 12
    assert info["modes"] == ["visual", "text", "avg", "max", "rrf", "zavg", "auto"]
    assert info["limits"]["formats"] == ["png", "jpeg", "tiff", "pdf"]
    assert info["encoders"]["visual"] == "fake-pixels-24"
    # the page's lexical box starts from SearchService.info's "lexical" (test_search_lexical.py), when there
    assert "if (info.lexical)" in client.get("/static/app.js").text


def test_search_notes_name_the_collection_not_its_path(root, backend, client, monkeypatch):
    """The service's notes tell the CLI what to run ("figsearch index --collection /srv/coll"): not a client."""
    search = backend.search

    def noted(query):
        result = search(query)
        result.notes.append(f"lexical: no BM25 table yet; build it with: figsearch index --collection {root.resolve()}")
        return result

    monkeypatch.setattr(backend, "search", noted)
    body = client.get("/api/search", params={"figure_id": EP_SHEET2, "mode": "visual", "k": 1}).json()
    assert body["notes"] == ["lexical: no BM25 table yet; build it with: figsearch index --collection collection"]


def test_info_names_the_collection_not_its_path(root, backend, client, monkeypatch):
    """As error messages do (docs/serving.md): SearchService.info gives the collection's path, for the CLI."""
    monkeypatch.setattr(backend, "info", lambda: {"collection": str(root.resolve()), "notes": [f"built in {root}/index"]},
                        raising=False)
    info = client.get("/api/info").json()
    assert info["collection"] == "collection" and info["notes"] == ["built in collection/index"]


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="dropzone"' in page.text and "static/app.js" in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    # an upload is searched upright alone by default: the page offers the API's every-turn option
    assert 'id="all-turns"' in page.text and 'form.append("all_turns", "true")' in client.get("/static/app.js").text
    # and the lexical part of word queries (on by default) as a box, ticked, that sends the API's field either way
    assert 'id="lexical" checked' in page.text
    assert 'form.append("lexical", $("lexical").checked ? "true" : "false")' in client.get("/static/app.js").text
    # the API's exclude_patents has a field (stop 26), sent and kept in the address like the other filters
    assert 'id="exclude-patents"' in page.text and 'put("exclude_patents", "exclude-patents")' in client.get("/static/app.js").text


def test_openapi_schema_lists_every_endpoint_with_the_error_shape(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/search", "/api/preview", "/api/figures/{figure_id}", "/api/figures/{figure_id}/image",
                 "/api/figures/{figure_id}/thumbnail", "/api/patents/{publication_number}", "/api/info", "/api/health"):
        assert path in paths, path
    assert set(paths["/api/search"]) == {"get", "post"}
    responses = paths["/api/search"]["post"]["responses"]
    for status in ("400", "404", "413", "415", "422", "500"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "HTTPValidationError" not in str(paths["/api/search"])
    assert client.get("/docs").status_code == 200


# -- search ------------------------------------------------------------------------------------


def test_search_by_figure_id_finds_the_other_sheets_of_its_patent_first(client, backend):
    body = client.get("/api/search", params={"figure_id": EP_SHEET2, "mode": "visual", "k": 3}).json()
    assert [h["figure_id"] for h in body["hits"]] == [EP_SHEET2, f"{EP}-D00003", f"{EP}-D00001"]
    first = body["hits"][0]
    assert first["rank"] == 1 and first["patent"] == EP and first["label"] == "FIG. 2"
    assert first["score"] == pytest.approx(1.0, abs=1e-5)
    assert first["thumbnail_url"] == f"/api/figures/{EP_SHEET2}/thumbnail"
    assert first["image_url"] == f"/api/figures/{EP_SHEET2}/image"
    assert first["links"]["espacenet"].endswith("pn%3DEP1000003A1")
    assert body["total"] == 12 and body["k"] == 3 and body["offset"] == 0 and body["next_offset"] == 3
    query = backend.calls[-1]
    assert query.figure_id == EP_SHEET2 and query.image is None and query.mode == "visual" and query.k == 3


def test_a_readable_figure_reference_works_as_in_the_cli(client, backend):
    """'EP1000003A1 FIG. 2' names a figure in the API as in `figsearch search --figure` and figsearch.open()."""
    body = client.get("/api/search", params={"figure_id": f"{EP} FIG. 2", "mode": "visual", "k": 3}).json()
    assert backend.calls[-1].figure_id == EP_SHEET2 and body["query"]["figure_id"] == EP_SHEET2
    assert body["hits"][0]["figure_id"] == EP_SHEET2
    assert client.get(f"/api/figures/{EP} fig. 2").json()["figure"]["figure_id"] == EP_SHEET2
    # a patent alone: the answer says how to name one of its figures, not just "unknown figure id"
    answer = client.get("/api/search", params={"figure_id": EP, "mode": "visual"})
    assert answer.status_code == 404
    assert f"{EP} is a patent, not a figure" in answer.json()["error"]["message"]
    assert f"'{EP} FIG. 1'" in answer.json()["error"]["message"]


def test_paging_walks_the_whole_ranking_once(client):
    seen, offset = [], 0
    while offset is not None:
        body = client.get("/api/search", params={"figure_id": EP_SHEET2, "k": 5, "offset": offset}).json()
        assert [h["rank"] for h in body["hits"]] == list(range(offset + 1, offset + 1 + len(body["hits"])))
        seen += [h["figure_id"] for h in body["hits"]]
        offset = body["next_offset"]
    assert len(seen) == 12 and len(set(seen)) == 12


@pytest.mark.parametrize(
    "fmt,options,filename",
    [
        ("PNG", {}, "sheet.png"),
        ("JPEG", {"quality": 95}, "sheet.jpg"),
        ("TIFF", {"compression": "group4"}, "sheet.tif"),
        ("PDF", {"resolution": 72}, "sheet.pdf"),
    ],
)
def test_search_by_uploaded_sheet_in_each_format(client, backend, root, fmt, options, filename):
    image = sheet(root)
    if fmt == "TIFF":
        image = image.point(lambda v: 255 if v > 128 else 0).convert("1")
    data = encoded(image, fmt, **options)
    response = client.post("/api/search", files={"image": (filename, data, "application/octet-stream")},
                           data={"mode": "visual", "k": "4"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["image"] is True
    # the sheet itself and its siblings come first, whatever the format carried it
    assert [h["patent"] for h in body["hits"][:3]] == [EP] * 3
    sent = backend.calls[-1].image
    assert isinstance(sent, Image.Image) and sent.mode == "L"
    # a PDF page that is one scanned image is decoded as stored, as ingest stores it (figsearch.imaging)
    assert sent.size == (400, 560)


def test_format_is_sniffed_not_taken_from_the_name(client, backend, root):
    data = encoded(sheet(root), "PNG")
    response = client.post("/api/search", files={"image": ("drawing.pdf", data, "application/pdf")},
                           data={"mode": "visual"})
    assert response.status_code == 200
    assert response.json()["hits"][0]["figure_id"] == EP_SHEET2


def test_page_of_a_multipage_tiff(client, backend, root):
    first, second = sheet(root, "USD0900001S-D00001"), sheet(root, EP_SHEET2)
    buffer = io.BytesIO()
    first.save(buffer, format="TIFF", save_all=True, append_images=[second])
    files = {"image": ("two.tif", buffer.getvalue(), "image/tiff")}
    body = client.post("/api/search", files=files, data={"mode": "visual", "page": "2"}).json()
    assert body["hits"][0]["figure_id"] == EP_SHEET2
    # stop 26: the answer says which page of how many was searched (the first one too), and a page too far is refused
    assert body["notes"][0] == "the file has 2 pages: page 2 was searched (the page field picks another)"
    first_page = client.post("/api/search", files=files, data={"mode": "visual"}).json()
    assert first_page["notes"][0] == "the file has 2 pages: page 1 was searched (the page field picks another)"
    too_far = client.post("/api/search", files=files, data={"mode": "visual", "page": "3"})
    assert too_far.status_code == 400 and "has 2 page(s); page 3 was asked for" in too_far.json()["error"]["message"]
    no_file = client.get("/api/search", params={"text": "rotor", "page": "2"})
    assert no_file.status_code == 400 and "page=2 picks a page of an uploaded PDF" in no_file.json()["error"]["message"]


def test_crop_of_an_upload_reaches_the_backend_cut(client, backend, root):
    data = encoded(sheet(root), "PNG")
    response = client.post("/api/search", files={"image": ("s.png", data, "image/png")},
                           data={"crop": "0.25,0.5,0.75,1", "mode": "visual"})
    assert response.status_code == 200
    assert backend.calls[-1].image.size == (200, 280)
    assert response.json()["query"]["crop"] == [0.25, 0.5, 0.75, 1.0]


def test_crop_of_a_collection_figure_becomes_an_image_query(client, backend):
    response = client.post("/api/search", data={"figure_id": EP_SHEET2, "crop": "0,0,0.5,0.5",
                                                "exclude_query_patent": "true", "mode": "visual"})
    assert response.status_code == 200
    query = backend.calls[-1]
    assert query.figure_id is None and query.image.size == (200, 280)
    assert query.filters.exclude_patents == (EP,) and query.exclude_query_patent is False
    assert all(h["patent"] != EP for h in response.json()["hits"])


def test_text_search_with_fusion_options_and_filters(client, backend):
    params = {
        "text": "  the rim and spoke ", "mode": "rrf", "text_weight": "0.25", "k": "7", "offset": "2",
        "date_from": "2020-01-01", "date_to": "2021-12-31", "office": "us", "classification": "12-",
        "exclude_patents": "EP1000003A1, USD0900002S", "exclude_query_patent": "false",
    }
    body = client.get("/api/search", params=params).json()
    query = backend.calls[-1]
    assert query.text == "the rim and spoke" and query.mode == "rrf" and query.text_weight == 0.25
    assert (query.k, query.offset) == (7, 2)
    f = query.filters
    assert (f.date_from, f.date_to, f.office, f.classification_prefix) == ("2020-01-01", "2021-12-31", "US", "12-")
    assert f.exclude_patents == ("EP1000003A1", "USD0900002S")
    # only the wheel patent (US, 2021, Locarno 12-16) passes: three sheets, the first two skipped
    assert body["total"] == 3 and [h["rank"] for h in body["hits"]] == [3]
    assert body["hits"][0]["patent"] == "USD0900001S"


def test_neighbour_text_reaches_the_service_and_is_off_unless_asked(client, backend):
    client.get("/api/search", params={"text": "rim", "mode": "auto"})
    assert backend.calls[-1].neighbour_text is None  # the service's default
    client.get("/api/search", params={"text": "rim", "mode": "auto", "neighbour_text": "true"})
    assert backend.calls[-1].neighbour_text is True


def test_lexical_reaches_the_service(client, backend):
    client.get("/api/search", params={"text": "rim", "mode": "text"})
    assert backend.calls[-1].lexical is None  # the service's default
    body = client.get("/api/search", params={"text": "rim", "mode": "text", "lexical": "true"}).json()
    assert backend.calls[-1].lexical is True
    assert all(hit["matched_words"] == [] for hit in body["hits"])  # the fake backend matches no words


def test_image_and_text_together_in_one_form(client, backend, root):
    data = encoded(sheet(root), "PNG")
    body = client.post("/api/search", files={"image": ("s.png", data, "image/png")},
                       data={"text": "bracket", "mode": "avg"}).json()
    query = backend.calls[-1]
    assert query.image is not None and query.text == "bracket"
    assert body["modalities"] == ["text", "visual"] and set(body["hits"][0]["scores"]) == {"text", "visual"}


def test_blank_form_fields_mean_absent(client, backend):
    response = client.post("/api/search", data={"text": "coil", "date_from": "", "office": " ", "crop": ""})
    assert response.status_code == 200
    assert backend.calls[-1].filters.date_from is None and backend.calls[-1].filters.office is None


# -- preview -----------------------------------------------------------------------------------


def test_preview_decodes_a_tiff_to_png(client, root):
    data = encoded(sheet(root).convert("1"), "TIFF", compression="group4")
    response = client.post("/api/preview", files={"image": ("x.tif", data, "image/tiff")})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-page-count"] == "1"
    assert Image.open(io.BytesIO(response.content)).size == (400, 560)


def test_preview_of_a_pdf_page_says_how_many_pages(client, root):
    buffer = io.BytesIO()
    sheet(root).save(buffer, format="PDF", save_all=True, append_images=[sheet(root, "USD0900001S-D00001")])
    response = client.post("/api/preview", files={"image": ("x.pdf", buffer.getvalue(), "application/pdf")},
                           data={"page": "2"})
    assert response.status_code == 200 and response.headers["x-page-count"] == "2"
    assert Image.open(io.BytesIO(response.content)).mode == "L"


# -- figures and their files ---------------------------------------------------------------------


def test_figure_details_carry_signs_with_boxes_and_linked_sentences(client):
    body = client.get(f"/api/figures/{EP_SHEET2}").json()
    assert body["figure"]["figure_id"] == EP_SHEET2 and body["figure"]["label"] == "FIG. 2"
    assert (body["figure"]["width"], body["figure"]["height"]) == (400, 560)
    assert body["patent_title"] == "Mounting bracket"
    signs = {s["text"]: s for s in body["reference_signs"]}
    assert set(signs) == {"30", "32", "FIG. 2"}
    x0, y0, x1, y1 = signs["30"]["box"]
    assert 35 <= x0 < x1 <= 80 and 55 <= y0 < y1 <= 95
    assert [(s["text"], s["reason"], s["signs"]) for s in body["sentences"]] == [
        ("The bracket 30 is part of the mounting bracket.", "sign", ["30"]),
        ("The bolt hole 32 is part of the mounting bracket.", "sign", ["32"]),
    ]
    assert {g["sign"]: g["term"] for g in body["glossary"]} == {"30": "bracket", "32": "bolt hole"}
    assert body["links"]["google_patents"] == "https://patents.google.com/patent/EP1000003A1/en"


def test_figure_image_and_thumbnail_are_the_stored_files(client, root):
    image = client.get(f"/api/figures/{EP_SHEET2}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == (root / "images" / EP / "D00002.png").read_bytes()
    thumb = client.get(f"/api/figures/{EP_SHEET2}/thumbnail")
    assert thumb.content == (root / "thumbs" / EP / "D00002.png").read_bytes()
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 200


def test_thumbnail_falls_back_to_the_image(tmp_path):
    root = build_collection(tmp_path / "c", sheets_per_patent=1)
    from figsearch.store import Collection

    with Collection.open(root, write=True) as collection, collection.transaction() as db:
        db.execute("UPDATE figures SET thumbnail_path=NULL WHERE figure_id=?", (f"{EP}-D00001",))
    client, _ = make_client(root)
    response = client.get(f"/api/figures/{EP}-D00001/thumbnail")
    assert response.status_code == 200
    assert response.content == (root / "images" / EP / "D00001.png").read_bytes()


# -- patents -----------------------------------------------------------------------------------


def test_patent_details(client):
    body = client.get(f"/api/patents/{EP}").json()
    patent = body["patent"]
    assert patent["publication_number"] == EP and patent["office"] == "EP" and patent["kind"] == "A1"
    assert patent["title"] == "Mounting bracket" and patent["publication_date"] == "2019-11-20"
    assert patent["classifications"] == [{"scheme": "IPC", "code": "F16M 13/02"}]
    assert patent["claims"] == 1
    assert [f["figure_id"] for f in body["figures"]] == [f"{EP}-D0000{n}" for n in (1, 2, 3)]
    assert body["figures"][0]["thumbnail_url"] == f"/api/figures/{EP}-D00001/thumbnail"
    assert [g["sign"] for g in body["glossary"]] == sorted(PATENTS[EP]["signs"])


@pytest.mark.parametrize(
    "number,expected",
    [
        ("USD0528368S", "USD528368S"),
        ("US07123456B2", "US7123456B2"),
        ("US20250204297A1", "US20250204297A1"),
        ("EP1667425A1", "EP1667425A1"),
        ("WO2020123456A1", "WO2020123456A1"),
    ],
)
def test_register_links_drop_bulk_data_zero_padding(number, expected):
    links = register_links(number)
    assert links.google_patents == f"https://patents.google.com/patent/{expected}/en"
    assert links.espacenet == f"https://worldwide.espacenet.com/patent/search?q=pn%3D{expected}"


def test_backend_is_closed_when_the_app_stops(root):
    client, backend = make_client(root)
    with client:
        client.get("/api/health")
    assert backend.closed


# -- getting the results out (stop 27) -----------------------------------------------------------


def test_format_csv_gives_the_page_of_hits_as_a_file(client, backend, root):
    import csv

    params = {"text": "rim", "mode": "avg", "k": "2", "offset": "1"}
    body = client.get("/api/search", params=params).json()
    response = client.get("/api/search", params={**params, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="figsearch-rim-2-3.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["figure_id"] for r in rows] == [h["figure_id"] for h in body["hits"]]
    assert [int(r["rank"]) for r in rows] == [2, 3]
    first, hit = rows[0], body["hits"][0]
    assert first["patent"] == hit["patent"] and first["title"] == (hit["title"] or "")
    assert float(first["score"]) == pytest.approx(hit["score"], abs=1e-6)
    # a column for each modality always (the same columns for every search of a report), empty where it saw nothing
    assert {m: float(first[f"{m}_score"]) for m in ("visual", "text") if first[f"{m}_score"]} == pytest.approx(hit["scores"], abs=1e-6)
    assert first["espacenet"] == hit["links"]["espacenet"] and first["sentences"].startswith(hit["sentences"][0])
    # an upload the same way (the page's Download CSV posts its form again)
    data = encoded(sheet(root), "PNG")
    upload = client.post("/api/search", files={"image": ("s.png", data, "image/png")},
                         data={"mode": "visual", "format": "csv", "k": "3"})
    assert upload.status_code == 200 and upload.headers["content-disposition"].endswith('-drawing-1-3.csv"')
    assert len(list(csv.DictReader(io.StringIO(upload.text)))) == 3
    assert client.get("/api/search", params={**params, "format": "xml"}).status_code == 422


def test_dates_take_a_year_or_a_month_as_the_cli_does(client, backend):
    """date_from=2017 answered 422 "Datetimes provided to dates should have zero time" (the CLI took it)."""
    response = client.get("/api/search", params={"text": "rim", "date_from": "2020", "date_to": "2021-6"})
    assert response.status_code == 200, response.text
    assert (backend.calls[-1].filters.date_from, backend.calls[-1].filters.date_to) == ("2020", "2021-06")
    body = client.get("/api/search", params={"text": "rim", "date_from": "2021-13"}).json()
    assert body["error"]["status"] == 422 and "date_from='2021-13' is not a date: month must be in 1..12" in body["error"]["message"]
    error = client.post("/api/search", data={"text": "rim", "date_from": "2022", "date_to": "2021-12"}).json()["error"]
    assert error["status"] == 400 and "date_from 2022 is after date_to 2021-12" in error["message"]
