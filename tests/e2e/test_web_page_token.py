"""The page against a server that needs its access token, in headless Chromium: it asks for the
token once, refuses a wrong one, then works end to end (info, a search, the thumbnails, a
figure's view) with the token kept as an HttpOnly session cookie, out of the address bar."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from pagehelpers import hits, wait  # noqa: E402
from server_fake import FakeBackend, build_collection  # noqa: E402
from test_web_page import ThreadServer  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "team-token-for-the-browser-test-0123456789"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    from figsearch.server.app import create_app
    from figsearch.server.auth import token_digest

    root = build_collection(tmp_path_factory.mktemp("e2e-token") / "collection", sheets_per_patent=2)
    with ThreadServer(create_app(FakeBackend(root), root, token_digest=token_digest(TOKEN))) as server:
        yield server.url


def _ready(d) -> bool:
    return d.execute_script("return document.body.dataset.ready === '1'")


def test_the_page_asks_for_the_token_once_then_works(browser, guarded):
    from selenium.webdriver.common.by import By

    d = browser
    d.delete_all_cookies()
    d.get(guarded)
    dialog = d.find_element(By.ID, "token-dialog")
    wait(d, lambda d: dialog.get_attribute("open") is not None, what="the token dialog")
    assert not _ready(d)

    d.find_element(By.ID, "token-input").send_keys("not-the-token-0123456789")
    d.find_element(By.ID, "token-submit").click()
    error = d.find_element(By.ID, "token-error")
    wait(d, lambda d: error.is_displayed() and "not this server's token" in error.text, what="the wrong-token message")

    box = d.find_element(By.ID, "token-input")
    box.clear()
    box.send_keys(TOKEN)
    d.find_element(By.ID, "token-submit").click()
    wait(d, _ready, what="collection info after the token")
    assert "token" not in d.current_url
    cookies = d.get_cookies()
    assert any(c["value"] == TOKEN and c["httpOnly"] for c in cookies), cookies
    assert d.execute_script("return document.cookie") == ""  # HttpOnly: the page's scripts cannot read it

    # a search, and its thumbnails load (an <img> sends the cookie; it cannot send a bearer header)
    d.get("about:blank")
    d.get(guarded + "#text=bracket&mode=text")  # a search kept in the address, as the page writes it
    wait(d, lambda d: len(hits(d)) > 0, what="the result grid")
    wait(d, lambda d: d.execute_script(
        "const i = document.querySelector('#grid .hit img'); return i.complete && i.naturalWidth > 0"),
        what="the first thumbnail")
    d.find_elements(By.CSS_SELECTOR, "#grid .hit .hit-thumb")[0].click()
    wait(d, lambda d: d.find_element(By.ID, "figure-dialog").get_attribute("data-loaded") == "1", what="figure view")
    # the details arrive first (data-loaded); the image is a request of its own, on a busy machine later
    wait(d, lambda d: d.execute_script("return document.getElementById('fd-img').naturalWidth") == 400,
         what="the figure image")
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
    assert not severe, severe


def test_the_printed_token_url_opens_the_page_directly(browser, guarded):
    d = browser
    d.delete_all_cookies()
    d.get(f"{guarded}?token={TOKEN}")
    wait(d, _ready, what="collection info")
    assert "token" not in d.current_url
    assert d.find_element("id", "token-dialog").get_attribute("open") is None
