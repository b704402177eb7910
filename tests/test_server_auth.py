"""The access token: every route of the OpenAPI schema but /api/health answers 401 without it,
in the one error shape; a bearer token or the cookie set after a ?token= visit lets requests
through; the token never reaches a log line. And no error message names a server directory."""

from __future__ import annotations

import logging
import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from server_fake import FakeBackend, assert_error, build_collection, make_client  # noqa: E402

from figsearch.errors import EmptyCollection  # noqa: E402
from figsearch.server.auth import HideTokenFilter, check_token, hide_token, token_digest  # noqa: E402
from figsearch.server.errors import redact_paths  # noqa: E402

TOKEN = "s3cret-token-for-the-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FIGURE = "EP1000003A1-D00001"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server-auth") / "collection", sheets_per_patent=1)


@pytest.fixture(scope="module")
def client(root):
    client, _ = make_client(root, token_digest=token_digest(TOKEN))
    with client:
        yield client


def _routes(client) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation in the app's OpenAPI schema."""
    schema = client.get("/openapi.json", headers=BEARER).json()
    routes = []
    for path, operations in schema["paths"].items():
        concrete = path.replace("{figure_id}", FIGURE).replace("{publication_number}", "EP1000003A1")
        assert "{" not in concrete, f"a path parameter the test does not know: {path}"
        routes += [(method.upper(), concrete) for method in operations]
    return routes


def test_every_route_but_health_needs_the_token(client):
    routes = _routes(client)
    assert len(routes) >= 8 and ("GET", "/api/health") in routes
    for method, path in routes:
        if path == "/api/health":
            assert client.request(method, path).status_code == 200
            continue
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                        {"Authorization": "Basic " + TOKEN}, {"Cookie": f"figsearch-token-80=wrong"}):
            response = client.request(method, path, headers=headers)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text
    # the schema and the API reference need it too, and so does a path no route has
    for path in ("/openapi.json", "/docs", "/redoc", "/api/nothing-here"):
        assert_error(client.get(path), 401, "unauthorized")


def test_with_the_bearer_token_every_route_answers(client):
    for method, path in _routes(client):
        response = client.request(method, path, headers=BEARER)
        # no 401: each answers as without a token (a POST without its form is a 400 or 422)
        assert response.status_code in (200, 400, 422), (method, path, response.text)
    assert client.get("/api/search", params={"figure_id": FIGURE}, headers=BEARER).status_code == 200


def test_the_page_and_its_files_are_public_so_it_can_ask_for_the_token(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="token-dialog"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_a_token_url_sets_an_httponly_cookie_and_drops_the_token_from_the_address(root):
    client, _ = make_client(root, token_digest=token_digest(TOKEN))
    with client:
        response = client.get(f"/?token={TOKEN}&text=rim", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/?text=rim"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        # the client keeps the cookie: the API and the figure images now answer, as for the page's <img>
        assert client.get("/api/info").status_code == 200
        assert client.get(f"/api/figures/{FIGURE}/thumbnail").status_code == 200
        client.cookies.clear()
        assert_error(client.get("/api/info"), 401)
        wrong = client.get("/?token=not-the-token-0123456789", follow_redirects=False)
        assert_error(wrong, 401, "unauthorized")
        assert "set-cookie" not in wrong.headers


def test_without_a_token_configured_nothing_changes(root):
    client, _ = make_client(root)
    with client:
        assert client.get("/api/info").status_code == 200


def test_the_token_never_reaches_the_access_log(client, caplog):
    # uvicorn's access log line: client, method, path with its query string, version, status
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/?token={TOKEN}&text=rim", "1.1", 303), None)
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(record)
    assert any(isinstance(f, HideTokenFilter) for f in logging.getLogger("uvicorn.access").filters)
    line = record.getMessage()
    assert TOKEN not in line and "token=[hidden]&text=rim" in line
    assert hide_token("/a?x=1&token=abc;") == "/a?x=1&token=[hidden];"


def test_short_tokens_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        check_token("  short \n")
    assert check_token(f"  {TOKEN}\n") == TOKEN


# -- no error body names a server directory -----------------------------------------------------


def test_no_error_body_contains_the_collection_path(root):
    class Revealing(FakeBackend):
        def search(self, query):
            raise EmptyCollection(f"collection {self.root} has no indexed drawings; "
                                  f"run: figsearch index --collection {self.root}")

    client, _ = make_client(root, Revealing(root))
    paths = {str(root), str(root.resolve())}
    with client:
        responses = [
            client.get("/api/patents/EP9999999A1"),  # the store's message names its directory
            client.get("/api/figures/NOPE-D00001"),
            client.get("/api/figures/NOPE-D00001/image"),
            client.get("/api/search", params={"figure_id": "NOPE-D00001", "text": "rim"}),
            client.get("/api/search", params={"text": "rim"}),
            client.get("/static/missing.js"),
            client.get("/no/such/page"),
        ]
    for response in responses:
        assert response.status_code >= 400
        assert not any(p in response.text for p in paths), response.text
        assert "/tmp" not in response.text and not re.search(r"/home/|/work/|/usr/", response.text), response.text
    assert "in collection collection" in responses[0].json()["error"]["message"]
    assert "--collection collection" in responses[4].json()["error"]["message"]


def test_redact_paths_replaces_the_deepest_known_directory(tmp_path):
    coll = tmp_path / "team-collection"
    message = f"index file {coll}/index/visual.faiss is missing; see {tmp_path}/other"
    redacted = redact_paths(message, coll)
    assert str(tmp_path) not in redacted
    assert "team-collection/index/visual.faiss" in redacted
