"""exclude_query_patent with an uploaded drawing: an upload that IS a drawing of the collection (its visual
match at NEAR_COPY or more, or a stored image with its very pixels) leaves its patent out (stop 26)."""

from __future__ import annotations

import io

import pytest
from _search_helpers import add_patent, angle_image, hand_collection

from figsearch.pipeline.index import update_collection
from figsearch.records import Figure, FigureRole, Patent
from figsearch.search import service as service_module
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection


@pytest.fixture
def service(tmp_path):
    """The hand collection (US1 at 0/30 degrees, US2 at 60/90, EP3 at 10) and EP4: a sheet (200 degrees) that
    was cut into one figure (150 degrees); the sheet itself is not indexed, as a split sheet never is. EP5 at 160;
    EP6 at 255 with a front page at 220 (not indexed, as front pages never are)."""
    root = tmp_path / "coll"
    hand_collection(root)
    with Collection.open(root, write=True) as c:
        sheet_path, sheet_sha = c.save_png("images", "EP4", "S", angle_image(200))
        cut_path, cut_sha = c.save_png("images", "EP4", "S-fig1", angle_image(150))
        c.upsert_patent(Patent("EP4", "EP", "4", "A1"), [
            Figure("EP4-S", "EP4", role=FigureRole.SPLIT_SHEET, image_path=sheet_path, image_sha256=sheet_sha,
                   width=16, height=16),
            Figure("EP4-S-fig1", "EP4", label="FIG. 1", sequence=1, parent_id="EP4-S", image_path=cut_path,
                   image_sha256=cut_sha, width=16, height=16),
        ])
        add_patent(c, "EP5", [("G", 160, None)])
        add_patent(c, "EP6", [("H", 255, None)], front_page_angle=220)  # a front page: stored, never indexed
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    with SearchService.open(root) as s:
        yield s


def png(image) -> bytes:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def search(service, image, **kwargs):
    return service.search(Query(image=png(image), mode="visual", k=20, exclude_query_patent=True, **kwargs))


def test_an_upload_of_a_collection_drawing_leaves_its_patent_out(service):
    result = search(service, angle_image(60))  # US2-C's drawing, cosine 1
    patents = {h.patent for h in result.hits}
    assert "US2" not in patents and {"US1", "EP3"} <= patents
    assert any("the upload matches US2 FIG. 0 (visual cosine 1.000): its patent US2 is left out" in n
               for n in result.notes)
    # without the option the drawing itself comes first
    plain = service.search(Query(image=png(angle_image(60)), mode="visual", k=3))
    assert plain.hits[0].figure_id == "US2-C" and not any("exclude_query_patent" in n for n in plain.notes)


def test_the_threshold_decides_and_a_far_upload_excludes_nothing(service, monkeypatch):
    far = search(service, angle_image(120))  # nearest: 90 and 150 degrees, cosine 0.87
    assert "US2" in {h.patent for h in far.hits}
    assert any("the upload matches no drawing of the collection closely (visual cosine below 0.95, no stored image with "
               "its pixels) (a sheet turned sideways is matched with all_turns), nothing to exclude" in n
               for n in far.notes)
    near = search(service, angle_image(80))  # US2-D at 90 degrees: cosine 0.985, a different drawing
    assert "US2" not in {h.patent for h in near.hits}
    monkeypatch.setattr(service_module, "NEAR_COPY", 0.99)
    assert "US2" in {h.patent for h in search(service, angle_image(80)).hits}


def test_a_whole_sheet_whose_figures_were_cut_apart_is_recognised_by_its_pixels(service):
    # the sheet scores cos(50 degrees) = 0.64 against its one indexed figure, but its pixels are the stored sheet's
    result = search(service, angle_image(200))
    assert "EP4" not in {h.patent for h in result.hits} and "EP5" in {h.patent for h in result.hits}
    assert any("the upload matches EP4-S (the same pixels): its patent EP4 is left out" in n for n in result.notes)
    # the same drawing a pixel off elsewhere is not the sheet
    other = angle_image(200)
    other.putpixel((5, 5), 0)
    assert "EP4" in {h.patent for h in search(service, other).hits}


def test_a_figure_query_still_excludes_its_own_patent(service):
    result = service.search(Query(figure_id="US2-C", mode="visual", k=20, exclude_query_patent=True))
    assert "US2" not in {h.patent for h in result.hits}
    text = service.search(Query(text="rotor", mode="text", k=20, exclude_query_patent=True))
    assert any("the query is not a figure of the collection, nothing to exclude" in n for n in text.notes)


def test_an_uploaded_front_page_is_found_by_its_stored_digest(service):
    # the front page (220 degrees) is not in the visual index: its nearest drawing is EP6-H at cos(35) = 0.82, and
    # no candidate has its pixels; the digest of its PNG as ingest stores it is figures.image_sha256
    plain = service.search(Query(image=png(angle_image(220)), mode="visual", k=3))
    assert plain.hits[0].patent == "EP6"
    result = search(service, angle_image(220))
    assert "EP6" not in {h.patent for h in result.hits}
    assert any("the upload matches EP6 FIG. 0 (the same stored image, its front page): its patent EP6 is left out" in n
               for n in result.notes)
    # a pixel off is another image: nothing is excluded, and the note says so
    other = angle_image(220)
    other.putpixel((9, 9), 0)
    missed = search(service, other)
    assert "EP6" in {h.patent for h in missed.hits}
    assert any("matches no drawing of the collection closely" in n for n in missed.notes)


def test_a_text_mode_search_recognises_a_front_page_too(service):
    result = service.search(Query(image=png(angle_image(220)), text="rotor", mode="text", k=20,
                                  exclude_query_patent=True))
    assert any("EP6 FIG. 0 (the same stored image, its front page)" in n for n in result.notes)
