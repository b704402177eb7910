"""The web page in a real headless Chromium: upload a sheet, see its patent's other sheets among
the first results, open one and see its reference signs and sentences, crop and search again,
then "more like this". Screenshots go to $FIGSEARCH_SCREENSHOTS or the test's tmp dir."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from pagehelpers import hits, results_meta, wait  # noqa: E402
from server_fake import FakeBackend, build_collection  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PATENT = "EP1000003A1"
QUERY_SHEET = f"{PATENT}-D00002"


class ThreadServer:
    """The real app under uvicorn, in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        from figsearch.cli.serve_cmd import open_listener

        self.sock = open_listener("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = build_collection(tmp_path_factory.mktemp("e2e") / "collection")
    from figsearch.server.app import create_app

    with ThreadServer(create_app(FakeBackend(root), root)) as server:
        # the user uploads the sheet as the office publishes it: a bilevel G4 TIFF
        sheet = Image.open(root / "images" / PATENT / "D00002.png").convert("1")
        upload = tmp_path_factory.mktemp("upload") / "EP1000003A1-sheet2.tif"
        sheet.save(upload, compression="group4")
        yield server.url, upload


def test_upload_browse_open_crop_and_more_like_this(browser, site, screenshot_dir: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, upload = site
    d = browser
    d.get(url)
    wait(d, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), what="collection info")
    assert "4 patents" in d.find_element(By.ID, "collection-info").text

    # 1. upload a sheet (a TIFF: the page has the server decode it for the preview)
    d.find_element(By.ID, "file-input").send_keys(str(upload))
    wait(d, lambda d: len(hits(d)) > 0, what="the result grid")
    wait(d, lambda d: d.execute_script("return document.getElementById('preview-img').naturalWidth") > 0,
         what="the query preview")
    first = hits(d)[:3]
    assert {pub for _, pub in first} == {PATENT}, first
    assert {f"{PATENT}-D00001", f"{PATENT}-D00003"} <= {fid for fid, _ in first}
    card = d.find_element(By.CSS_SELECTOR, "#grid .hit")
    assert PATENT in card.text and "FIG. 2" in card.text
    links = [a.get_attribute("href") for a in card.find_elements(By.CSS_SELECTOR, ".hit-links a")]
    assert links[0].startswith("https://worldwide.espacenet.com/") and links[1].startswith("https://patents.google.com/")
    d.save_screenshot(str(screenshot_dir / "1-results.png"))

    # 2. open another sheet of the patent: its signs are marked and its sentences are beside it
    sibling = next(i for i, (fid, _) in enumerate(hits(d)) if fid != QUERY_SHEET and fid.startswith(PATENT))
    d.find_elements(By.CSS_SELECTOR, "#grid .hit .hit-thumb")[sibling].click()
    wait(d, lambda d: d.find_element(By.ID, "figure-dialog").get_attribute("data-loaded") == "1", what="figure view")
    boxes = d.find_elements(By.CSS_SELECTOR, "#fd-signs rect.sign-box")
    assert sorted(b.get_attribute("data-sign") for b in boxes) == ["30", "32"]
    # the details arrive first (data-loaded); the image is a request of its own, on a busy machine later
    wait(d, lambda d: d.execute_script("return document.getElementById('fd-img').naturalWidth") == 400,
         what="the figure image")
    chips = d.find_element(By.ID, "fd-chips").text
    assert "bracket" in chips and "bolt hole" in chips
    sentences = d.find_elements(By.CSS_SELECTOR, "#fd-sentences li")
    assert "The bracket 30 is part of the mounting bracket." in sentences[0].text
    # pointing at a sentence lights up the box of the sign it mentions
    ActionChains(d).move_to_element(sentences[0]).perform()
    wait(d, lambda d: [r.get_attribute("data-sign") for r in d.find_elements(By.CSS_SELECTOR, "#fd-signs rect.hot")] == ["30"],
         what="the sign box highlight")
    time.sleep(0.3)
    d.save_screenshot(str(screenshot_dir / "2-figure.png"))
    d.find_element(By.ID, "fd-close").click()
    wait(d, lambda d: not d.find_element(By.ID, "figure-dialog").get_attribute("open"), what="the dialog to close")

    # 3. crop the query drawing and search again
    before = hits(d)
    preview = d.find_element(By.ID, "preview-img")
    w, h = preview.size["width"], preview.size["height"]
    (ActionChains(d).move_to_element_with_offset(preview, int(-w * 0.3), int(-h * 0.3)).click_and_hold()
     .move_by_offset(int(w * 0.6), int(h * 0.5)).release().perform())
    wait(d, lambda d: "cropped" in results_meta(d), what="the cropped search")
    assert d.find_element(By.ID, "crop-box").is_displayed()
    after = hits(d)
    assert after and after != before
    assert after[0][1] == PATENT
    d.save_screenshot(str(screenshot_dir / "3-cropped.png"))

    # 4. "more like this" from a result makes that figure the query
    d.find_elements(By.CSS_SELECTOR, "#grid .hit .hit-thumb")[0].click()
    wait(d, lambda d: d.find_element(By.ID, "figure-dialog").get_attribute("data-loaded") == "1", what="figure view")
    opened = d.find_element(By.ID, "figure-dialog").get_attribute("data-figure-id")
    d.find_element(By.ID, "fd-more").click()
    wait(d, lambda d: opened in results_meta(d), what="the more-like-this search")
    assert hits(d)[0][0] == opened
    assert opened.split("-")[0] in d.find_element(By.ID, "query-source").text

    # that search lives in the address: a reload (or a shared link) shows it again
    assert f"figure_id={opened}" in d.current_url
    d.refresh()
    wait(d, lambda d: hits(d) and hits(d)[0][0] == opened, what="the search restored from the address")

    severe = [entry for entry in d.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    print(f"screenshots in {screenshot_dir}")


def test_a_bad_upload_shows_the_servers_message(browser, site, tmp_path):
    from selenium.webdriver.common.by import By

    url, _ = site
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"GIF89a" + bytes(100))
    browser.get(url)
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), what="collection info")
    browser.find_element(By.ID, "file-input").send_keys(str(bogus))
    notice = browser.find_element(By.ID, "notice")
    wait(browser, lambda d: notice.is_displayed() and "GIF" in notice.text, what="the error notice")
