"""A metadata JSON whose titles are a listing's columns run together (stop 26): its titles are left out, not
shown as each patent's. us-utility-sheets/all-patents.json titled US12108227B2, a hearing test, "adjusting audio
parameters for a 12 user Head target for martial arts" (the file's own text: the reader pairs each entry's own
fields)."""

from __future__ import annotations

import json
import logging

from figsearch.ingest.metadata import load_json, read_json_metadata


def listing(titles: list[str]) -> dict:
    return {"patents": [{"id": f"US-{10000000 + i}-B2", "title": t, "abstract": f"Abstract {i}."}
                        for i, t in enumerate(titles)]}


def test_a_clean_listing_keeps_its_titles_even_one_with_a_number():
    titles = ["Ladder rack", "Pollinating machine", "Model 3 gearbox", "UV disinfection system", "Head and neck rest",
              "Oral suction device"]
    records = read_json_metadata(listing(titles), "clean.json")
    assert [r.title for r in records.values()] == titles


def test_run_in_titles_are_left_out_and_the_abstracts_kept(caplog):
    titles = ["adjusting audio parameters for a 12 user Head target for martial arts", "Ladder rack 14",
              "practice Systems and methods for indicating the existence of", "Tracking for traffic lights 13",
              "eyeglasses", "Oral suction device 8 Laser endodontic procedures"]
    with caplog.at_level(logging.WARNING):
        records = read_json_metadata(listing(titles), "listing.json")
    assert all(r.title is None for r in records.values())
    assert records["US10000000B2"].abstract == "Abstract 0."
    assert "listing.json: 6 of 6 titles look like a listing's title and sheet-count columns run together" in caplog.text


def test_the_shared_utility_listing_is_recognised(shared_data):
    path = shared_data / "us-utility-sheets" / "all-patents.json"
    records = read_json_metadata(load_json(path.read_bytes(), str(path)), str(path))
    hearing = records["US12108227B2"]
    assert hearing.title is None and "hearing test" in hearing.abstract
    assert not any(r.title for r in records.values())
