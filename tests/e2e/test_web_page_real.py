"""The whole product in a real headless Chromium: ``figsearch ingest`` and ``figsearch index`` build a
small collection from three real US design grants, ``figsearch serve`` serves it with the real
search service, and a user uploads a drawing sheet as the USPTO publishes it (a G4 TIFF), finds
the patent's other sheets first, opens one, crops and searches again, and asks for more like it.
Screenshots go to $FIGSEARCH_SCREENSHOTS or the test's tmp dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from pagehelpers import hits, results_meta, wait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.shared_data]

REPO = Path(__file__).resolve().parents[2]
#: small grants (three sheets each) whose sheets are told apart by the default offline encoder
GRANTS = ("USD0917866-20210504", "USD0919445-20210518", "USD0909824-20210209")
PATENT = "USD0917866S1"
QUERY_SHEET = "USD0917866-20210504/USD0917866-20210504-D00001.TIF"


def figsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "figsearch", *args]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                OMP_THREAD_LIMIT="1")


@pytest.fixture(scope="module")
def real_site(shared_data, tmp_path_factory):
    grants = shared_data / "us-design-grants"
    collection = tmp_path_factory.mktemp("e2e-real") / "collection"
    for step in (["ingest", "-q", *(str(grants / g) for g in GRANTS), "--collection", str(collection)],
                 ["index", "--collection", str(collection)]):
        done = subprocess.run(figsearch(*step), env=_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"figsearch {step[0]} failed:\n{done.stdout}\n{done.stderr}"
    server = subprocess.Popen(figsearch("serve", "--collection", str(collection), "--port", "0"), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, said = None, []
        deadline = time.time() + 120
        while url is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            said.append(line)
            match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(loopback only", line)
            url = match.group(1) if match else None
        assert url, f"figsearch serve did not say where it listens:\n{''.join(said)}"
        yield url, grants / QUERY_SHEET
    finally:
        server.terminate()
        server.wait(15)


def test_real_collection_upload_open_crop_and_more_like_this(browser, real_site, screenshot_dir: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, sheet = real_site
    d = browser
    d.get(url)
    wait(d, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), what="collection info")
    assert "3 patents" in d.find_element(By.ID, "collection-info").text

    # upload a sheet: the other sheets of its patent are among the first results
    d.find_element(By.ID, "file-input").send_keys(str(sheet))
    wait(d, lambda d: len(hits(d)) > 0, timeout=60, what="the result grid")
    wait(d, lambda d: d.execute_script("return document.getElementById('preview-img').naturalWidth") > 0,
         what="the query preview")
    first = [fid for fid, _ in hits(d)[:3]]
    assert {f"{PATENT}-D00002", f"{PATENT}-D00003"} <= set(first), first
    d.save_screenshot(str(screenshot_dir / "real-1-results.png"))

    # open another sheet: the drawing, its patent's data and the figure's explanation are shown
    index = next(i for i, (fid, _) in enumerate(hits(d)) if fid in (f"{PATENT}-D00002", f"{PATENT}-D00003"))
    opened = hits(d)[index][0]
    d.find_elements(By.CSS_SELECTOR, "#grid .hit .hit-thumb")[index].click()
    wait(d, lambda d: d.find_element(By.ID, "figure-dialog").get_attribute("data-loaded") == "1", what="figure view")
    assert d.find_element(By.ID, "figure-dialog").get_attribute("data-figure-id") == opened
    wait(d, lambda d: d.execute_script("return document.getElementById('fd-img').naturalWidth") > 0, what="the figure")
    assert PATENT in d.find_element(By.ID, "fd-eyebrow").text
    sheets = {f"{PATENT}-D0000{n}" for n in (1, 2, 3)}
    wait(d, lambda d: sheets <= {b.get_attribute("data-figure-id") for b in d.find_elements(By.CSS_SELECTOR, "#fd-strip button")},
         what="the patent's sheets under the figure")
    # what the description says about the figure: its signs and linked sentences, or that there are none
    assert d.find_element(By.ID, "fd-chips").text and d.find_element(By.ID, "fd-sentences").text
    d.save_screenshot(str(screenshot_dir / "real-2-figure.png"))
    d.find_element(By.ID, "fd-close").click()

    # crop the query to its middle and search again
    before = hits(d)
    preview = d.find_element(By.ID, "preview-img")
    w, h = preview.size["width"], preview.size["height"]
    (ActionChains(d).move_to_element_with_offset(preview, int(-w * 0.35), int(-h * 0.35)).click_and_hold()
     .move_by_offset(int(w * 0.7), int(h * 0.7)).release().perform())
    wait(d, lambda d: "cropped" in results_meta(d), timeout=60, what="the cropped search")
    after = hits(d)
    assert after and after != before
    d.save_screenshot(str(screenshot_dir / "real-3-cropped.png"))

    # more like this: the figure becomes the query
    d.find_elements(By.CSS_SELECTOR, "#grid .hit .hit-thumb")[0].click()
    wait(d, lambda d: d.find_element(By.ID, "figure-dialog").get_attribute("data-loaded") == "1", what="figure view")
    chosen = d.find_element(By.ID, "figure-dialog").get_attribute("data-figure-id")
    d.find_element(By.ID, "fd-more").click()
    wait(d, lambda d: chosen in results_meta(d), timeout=60, what="the more-like-this search")
    assert hits(d), "more like this found nothing"
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
