"""The page for an examiner's report (stop 27): a figure of the collection typed by its name searches with it, a
patent's name says how to name one of its figures, and "Download CSV" saves the page of results as the API
writes it (format=csv)."""

from __future__ import annotations

import csv
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from pagehelpers import hits, wait  # noqa: E402
from server_fake import FakeBackend, build_collection  # noqa: E402
from test_web_page import PATENT, QUERY_SHEET, ThreadServer  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = build_collection(tmp_path_factory.mktemp("e2e") / "collection")
    from figsearch.server.app import create_app

    backend = FakeBackend(root)
    with ThreadServer(create_app(backend, root)) as server:
        yield server.url, backend


def test_a_typed_figure_searches_and_the_results_download_as_csv(browser, site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, backend = site
    browser.get(url)
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the page")
    field = browser.find_element(By.ID, "figure-ref")
    field.send_keys(PATENT, Keys.ENTER)  # a patent, not a figure: the server's answer says what to give
    wait(browser, lambda d: "is a patent, not a figure" in d.find_element(By.ID, "notice").text, what="the notice")
    field.clear()
    field.send_keys(QUERY_SHEET, Keys.ENTER)
    wait(browser, lambda d: hits(d), what="the results")
    assert browser.find_element(By.ID, "query-source").text.startswith(PATENT)
    assert browser.find_element(By.ID, "figure-ref").get_attribute("value") == ""
    shown = [figure_id for figure_id, _ in hits(browser)]
    assert backend.calls[-1].figure_id == QUERY_SHEET and backend.calls[-1].image is None

    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    button = browser.find_element(By.ID, "download-csv")
    assert button.is_displayed()
    button.click()
    deadline = time.time() + 20
    while not list(tmp_path.glob("*.csv")) and time.time() < deadline:
        time.sleep(0.1)
    files = list(tmp_path.glob("*.csv"))
    assert [f.name for f in files] == [f"figsearch-{QUERY_SHEET}-1-{len(shown)}.csv"]
    rows = list(csv.DictReader(files[0].open(encoding="utf-8")))
    assert [r["figure_id"] for r in rows] == shown
