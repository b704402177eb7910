"""auto's calibration per visual model: lookup by the model file's digest, the fallback and its note,
the service passing what the file says, and the calibration rule of benchmarks/fusion_tuning.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from _search_helpers import hand_service

from figsearch.search import fusion
from figsearch.search.query import Query, rerank_by_default
from figsearch.search.service import SearchService

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def calibration(monkeypatch, tmp_path):
    """Point fusion at a calibration file written by the test; returns a function that writes it."""

    def write(encoders: dict) -> None:
        path = tmp_path / "calibration.json"
        path.write_text(json.dumps({"encoders": encoders}), encoding="utf-8")
        monkeypatch.setattr(fusion, "CALIBRATION_FILE", path)
        fusion._calibration.cache_clear()

    yield write
    fusion._calibration.cache_clear()


def test_an_entry_for_a_model_file_wins_over_the_encoder_name(calibration):
    calibration({"enc": {"near": 0.5, "far": 0.3}, "enc@abc123": {"near": 0.7, "far": None, "near_agree": 0.3}})
    assert fusion.near_thresholds("enc", "abc123") == {"near": 0.7, "far": None, "near_agree": 0.3}
    # an entry without near_agree (written before stop 20) switches on the nearness alone, as it did
    assert fusion.near_thresholds("enc", "other-digest") == {"near": 0.5, "far": 0.3, "near_agree": 0.0}
    assert fusion.near_thresholds("enc") == {"near": 0.5, "far": 0.3, "near_agree": 0.0}
    assert fusion.calibration_key("enc", "abc123") == "enc@abc123" and fusion.calibration_key("enc") == "enc"
    assert fusion.calibration_note("enc", "abc123") is None and fusion.calibration_note("enc") is None


def test_a_model_without_an_entry_falls_back_to_the_uncalibrated_rule_with_a_note(calibration):
    calibration({"enc@abc123": {"near": 0.7, "far": 0.2}})
    assert fusion.near_thresholds("enc", "fff000") == {"near": None, "far": None, "near_agree": 0.0}
    note = fusion.calibration_note("enc", "fff000")
    assert "enc" in note and "fff000" in note and "--calibrate" in note
    assert fusion.calibration_note(None) is None  # no visual channel: nothing to calibrate
    assert fusion.calibration_note("hog") is None  # no model file (hog, lines): the uncalibrated rule by design
    lists = {"visual": [("a", 0.99), ("b", 0.98), ("c", 0.1), ("d", 0.1)], "text": [("c", 0.5), ("a", 0.1), ("d", 0.0)]}
    uncalibrated = fusion.fuse(lists, {}, mode="auto")
    assert fusion.fuse(lists, {}, mode="auto", **fusion.near_thresholds("enc", "fff000")) == uncalibrated
    # the entry's model: its head is near (h = 0.94 >= 0.7), so auto ranks as avg
    assert [f.figure_id for f in fusion.fuse(lists, {}, mode="auto", **fusion.near_thresholds("enc", "abc123"))] == \
        [f.figure_id for f in fusion.fuse(lists, {}, mode="avg")]


def test_the_shipped_file_has_an_entry_for_the_default_visual_model():
    from importlib import resources

    from figsearch.fsutil import sha256_file

    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.embed.sheet_context import split_sheet_context

    # the default, the previous default, the Lite0 options and the fine-tuned Lite0 each have an entry written by fusion_tuning.py --calibrate
    for name in (split_sheet_context(DEFAULT_VISUAL_ENCODER)[0].split(":", 1)[1], "drawing-backbone2.onnx", "drawing-backbone4-lite0.onnx",
                 "drawing-backbone5-lite0-288.onnx", "drawing-backbone6-lite0-288-ft.onnx"):
        shipped = Path(str(resources.files("figsearch") / "models" / name))
        if not shipped.is_file():
            pytest.skip(f"{shipped} is not in this installation")
        fusion._calibration.cache_clear()
        entry = fusion.calibration_entry("backbone", sha256_file(shipped)[:16])
        assert entry is not None and "chosen" in entry, name  # with its provenance
        assert fusion.calibration_note("backbone", sha256_file(shipped)[:16]) is None


@pytest.fixture
def service(collection_dir):
    with hand_service(collection_dir) as s:
        yield s


def test_the_service_passes_the_encoders_thresholds_and_notes_a_missing_entry(service, calibration, monkeypatch):
    calibration({})
    query = Query(figure_id="US1-A", mode="auto", k=10)
    plain = service.search(query)
    assert not any("calibration" in n for n in plain.notes)  # fake-angle has no model file: no note
    # a visual model file without an entry (as a newly trained backbone would be): the uncalibrated rule, noted
    monkeypatch.setattr(SearchService, "_visual_model", lambda self, indexes: ("fake-angle", "0123abcd"))
    noted = service.search(query)
    assert [h.figure_id for h in noted.hits] == [h.figure_id for h in plain.hits]
    assert any("fake-angle (model 0123abcd) has no fusion calibration" in n for n in noted.notes)
    assert not any("calibration" in n for n in service.search(Query(figure_id="US1-A", mode="avg", k=10)).notes)
    calibration({"fake-angle": {"near": 0.0, "far": None}})  # every head is near: auto ranks as avg
    calibrated = service.search(query)
    # auto ranks as avg over the lists it fuses: re-ranked when auto re-ranks by default (stop 22)
    average = service.search(Query(figure_id="US1-A", mode="avg", k=10, rerank=rerank_by_default("auto")))
    assert [h.figure_id for h in calibrated.hits] == [h.figure_id for h in average.hits]
    assert not any("calibration" in n for n in calibrated.notes)
    calibration({"fake-angle": {"near": None, "far": 2.0}})  # every head is far: auto ranks by the text alone
    far = service.search(query)
    text = service.search(Query(figure_id="US1-A", mode="text", k=10))
    # the figures with a text cosine above 0 come first, in the text's order (the rest tie at its lowest z)
    assert [h.figure_id for h in far.hits][:2] == [h.figure_id for h in text.hits][:2] == ["US2-D", "US2-C"]
    assert [h.figure_id for h in plain.hits] != [h.figure_id for h in far.hits]  # the thresholds did change it


def _tuning():
    spec = importlib.util.spec_from_file_location("fusion_tuning", REPO / "benchmarks" / "fusion_tuning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_calibration_rule_keeps_auto_at_the_best_channel_on_every_set_then_takes_the_best_mean():
    tuning = _tuning()
    # class level: the visual head is far (h .2) and the text is the better channel; avg would lose there
    cls = [{"h": 0.2, "text": 0.5, "visual": 0.0, "avg": 0.2, "text-z": 0.5, "auto": 0.45}] * 4
    # same patent: near-copies (h .8), avg is far better than either channel or the uncalibrated rule
    same = [{"h": 0.8, "text": 0.5, "visual": 0.6, "avg": 0.9, "text-z": 0.5, "auto": 0.6}] * 4
    (near, far, agree), table = tuning.choose({"class": cls, "same": same})
    assert agree == 0.0  # rows without an agreement agree: requiring one gains nothing, and ties keep 0
    assert near is not None and 0.2 < near <= 0.8  # switches the near-copies to avg ...
    assert far is not None and 0.2 < far <= 0.8  # ... and the far heads to the text
    assert tuning.auto_ap(cls, near, far) == pytest.approx(0.5) and tuning.auto_ap(same, near, far) == pytest.approx(0.9)
    assert tuning.auto_ap(cls, None, None) == pytest.approx(0.45)  # the uncalibrated rule
    assert any(t["margin"] >= 0 for t in table)
    # no pair reaches the best channel everywhere: refused (stop 18; before, the least worst shortfall was taken)
    bad = [{"h": 0.5, "text": 0.9, "visual": 0.0, "avg": 0.1, "text-z": 0.8, "auto": 0.2}]
    chosen, table = tuning.choose({"bad": bad})
    assert chosen is None and not any(t["admissible"] for t in table)


def test_only_held_out_sets_count_and_no_held_out_set_may_fall_below_the_uncalibrated_rule_beyond_noise():
    """The lead's rule of stop 18: a set the model was trained on never decides; on every held-out set auto
    stays at the best channel and within noise of the uncalibrated rule (the Lite0 case of stop 17)."""
    tuning = _tuning()
    # trained on (class level, with its classes): near heads gain a lot from avg
    trained = [{"h": 0.6, "text": 0.3, "visual": 0.3, "avg": 0.6, "text-z": 0.3, "auto": 0.35}] * 10
    # held out, class level: half the heads are near (h .6); avg costs 0.01 per such query there
    held = ([{"h": 0.6, "text": 0.30, "visual": 0.05, "avg": 0.30, "text-z": 0.30, "auto": 0.31}] * 5
            + [{"h": 0.2, "text": 0.30, "visual": 0.05, "avg": 0.20, "text-z": 0.30, "auto": 0.31}] * 5)
    sets = {"trained": trained, "held": held}
    # counted alike (stop 17's rule), the trained-on set's gain would outweigh the held-out set's loss
    assert tuning.auto_ap(trained, 0.5, None) - tuning.auto_ap(trained, None, None) > \
        tuning.auto_ap(held, None, None) - tuning.auto_ap(held, 0.5, None) > 0
    chosen, table = tuning.choose(sets, held_out={"held"})
    assert chosen is not None and (chosen[0] is None or chosen[0] > 0.6)  # held out: near would cost 0.005 > noise
    assert tuning.auto_ap(held, *chosen) == pytest.approx(0.31)
    near_pairs = [t for t in table if t["near"] is not None and t["near"] <= 0.6]
    assert near_pairs and not any(t["admissible"] for t in near_pairs)
    assert all(t["mean"] == pytest.approx(tuning.auto_ap(held, t["near"], t["far"], t["near_agree"])) for t in table)  # held alone
    # the same loss within noise is allowed (noise 0.01 > 0.005), and then the higher mean may win
    held_small = [dict(r, avg=0.3095) if r["h"] == 0.6 else r for r in held]
    picked, _ = tuning.choose({"trained": trained, "held": held_small}, held_out={"held"}, noise=0.01)
    assert picked == (None, None, 0.0)  # no gain on the held-out set: the earlier pair on the grid, no thresholds
    # a gain within noise is a tie with the uncalibrated rule, and ties keep no thresholds
    held_tiny = [dict(r, auto=0.3) if r["h"] == 0.2 else r for r in held]  # text-z beats auto by 0.0 ... 0.005
    tiny = [dict(r, **{"text-z": 0.3004}) for r in held_tiny]  # far heads: text-z 0.0004 over auto (mean +0.0002)
    for r in tiny:
        r["text"] = 0.3
    assert tuning.choose({"held": tiny})[0] == (None, None, 0.0)
    assert tuning.choose({"held": tiny}, noise=0.0)[0][1] is not None  # without the noise allowance: a far threshold
    with pytest.raises(ValueError):
        tuning.choose(sets, held_out=set())


def test_the_calibration_requires_agreement_for_the_switch_to_avg_when_uncorroborated_near_heads_lose():
    """Stop 20: near heads of two kinds, near-copies the text agrees with (avg gains) and lookalikes it does
    not (avg loses to the text); the chosen entry switches the first kind only."""
    tuning = _tuning()
    copies = [{"h": 0.6, "agreement": 0.5, "text": 0.3, "visual": 0.2, "avg": 0.5, "text-z": 0.3, "auto": 0.35}] * 5
    lookalikes = [{"h": 0.6, "agreement": 0.0, "text": 0.3, "visual": 0.05, "avg": 0.2, "text-z": 0.3, "auto": 0.3}] * 5
    held = copies + lookalikes
    assert tuning.auto_ap(held, 0.55, None, 0.0) == pytest.approx(0.35)  # the switch on the nearness alone
    chosen, table = tuning.choose({"held": held})
    near, far, agree = chosen
    assert near is not None and near <= 0.6 and 0.0 < agree <= 0.5
    assert tuning.auto_ap(held, *chosen) == pytest.approx(0.4)  # avg for the copies, the rule for the lookalikes
    assert {t["near_agree"] for t in table if t["near"] is None} == {0.0}  # no near threshold: nothing to require


def test_patent_lists_match_without_kind_codes(tmp_path):
    tuning = _tuning()
    listed = tmp_path / "patents.txt"
    listed.write_text("USD0534334S1\n# a comment\nUS10011995B2  # trailing\n\n", encoding="utf-8")
    assert tuning.read_patents(listed) == {"USD0534334", "US10011995"}
    assert tuning.number("USD0534334") == "USD0534334" and tuning.number("EP1234567A1") == "EP1234567"


def test_a_replay_can_search_among_listed_patents_only(collection_dir):
    """The held-out designs searched among themselves (stop 20): every candidate and relevant figure is of a
    listed patent, as if the rest of the collection were not there."""
    tuning = _tuning()
    with hand_service(collection_dir):
        pass
    full = tuning.Replay(collection_dir, "same-patent", 10, [])
    only = tuning.Replay(collection_dir, "same-patent", 10, [], candidate_patents={"US1", "EP3"})
    assert set(full.vids) == {"US1-A", "US1-B", "US2-C", "US2-D", "EP3-E"}
    assert set(only.vids) == {"US1-A", "US1-B", "EP3-E"}
    assert only.queries == ["US1-A", "US1-B"] and only.qrels["US1-A"] == {"US1-B"}
    lists, _ = only.lists("US1-A")
    assert {f for candidates in lists.values() for f, _ in candidates} <= {"US1-B", "EP3-E"}


def test_the_calibration_replays_auto_re_ranked_as_the_service_ranks_it_by_default():
    from types import SimpleNamespace

    tuning = _tuning()
    default = tuning.calibration_rerank(SimpleNamespace(calibrate_rerank="default"))
    assert default == ({} if rerank_by_default("auto") else None)  # {}: rerank's own default settings
    assert tuning.calibration_rerank(SimpleNamespace(calibrate_rerank="off")) is None
    assert tuning.calibration_rerank(SimpleNamespace(calibrate_rerank="2,4,3")) == {
        "method": "aqe", "query_neighbours": 2, "db_neighbours": 4, "alpha": 3.0}


def test_an_index_mixed_with_its_sheets_has_a_key_of_its_own_and_falls_back_to_its_model_files_entry(calibration):
    """Stop 28: ``@sheet=1`` stores cut figures mixed with their sheets (other vectors, the same model file); an entry
    ``NAME@DIGEST@sheet=1`` holds for such an index only, and without one it uses the model file's entry, as before."""
    assert fusion.calibration_key("enc", "abc123", 1.0) == "enc@abc123@sheet=1"
    assert fusion.calibration_key("enc", "abc123", 0.5) == "enc@abc123@sheet=0.5"
    assert fusion.calibration_key("enc", "abc123", 0.0) == "enc@abc123" and fusion.calibration_key("enc", None, 1.0) == "enc"
    calibration({"enc@abc123": {"near": 0.3, "far": 0.25, "near_agree": 0.3}})
    inherited = {"near": 0.3, "far": 0.25, "near_agree": 0.3}
    assert fusion.near_thresholds("enc", "abc123", 1.0) == inherited == fusion.near_thresholds("enc", "abc123")
    assert fusion.calibration_note("enc", "abc123", 1.0) is None  # the model file has an entry: no note
    calibration({"enc@abc123": {"near": 0.3, "far": 0.25, "near_agree": 0.3},
                 "enc@abc123@sheet=1": {"near": None, "far": 0.2, "near_agree": 0.0}})
    assert fusion.near_thresholds("enc", "abc123", 1.0) == {"near": None, "far": 0.2, "near_agree": 0.0}
    assert fusion.near_thresholds("enc", "abc123") == inherited  # the plain index keeps the model file's entry
    assert fusion.near_thresholds("enc", "abc123", 2.0) == inherited  # another weight: no entry of its own


def test_a_mixed_index_writes_an_entry_of_its_own_only_when_the_inherited_one_fails_the_rule_or_loses_beyond_noise():
    tuning = _tuning()
    held = ([{"h": 0.6, "agreement": 0.5, "text": 0.3, "visual": 0.2, "avg": 0.5, "text-z": 0.3, "auto": 0.35}] * 5
            + [{"h": 0.2, "agreement": 0.0, "text": 0.3, "visual": 0.05, "avg": 0.2, "text-z": 0.3, "auto": 0.3}] * 5)
    chosen, _ = tuning.choose({"held": held})
    assert tuning.auto_ap(held, *chosen) == pytest.approx(0.4)
    # an inherited triple that scores as the chosen one: it holds
    holds, scores = tuning.inherited_holds({"held": held}, None, chosen, (0.55, 0.25, 0.3))
    assert holds and scores["held"] == pytest.approx(0.4)
    # no thresholds inherited: admissible (0.325 >= 0.3, the uncalibrated rule) but 0.075 below the chosen: an own entry
    holds, scores = tuning.inherited_holds({"held": held}, None, chosen, (None, None, 0.0))
    assert not holds and scores["held"] == pytest.approx(0.325)
    # within the noise of the chosen: a tie, the inherited entry stays
    assert tuning.inherited_holds({"held": held}, None, chosen, (None, None, 0.0), noise=0.1)[0]
    # an inherited triple below the best channel on a counted set is not admissible, whatever was chosen
    lookalike = [dict(r, avg=0.1) for r in held]  # avg now costs there: switching the near heads loses to the text
    assert not tuning.inherited_holds({"held": lookalike}, None, None, (0.55, None, 0.0))[0]
    # a set that is not counted never decides
    assert tuning.inherited_holds({"held": held, "trained": lookalike}, {"held"}, chosen, (0.55, 0.25, 0.3))[0]


def test_the_service_looks_up_the_entry_of_an_index_mixed_with_its_sheets(service, calibration, monkeypatch):
    """The service passes the index's sheet context (its identity's ``sheet_context``) with the model file's digest."""
    settings = SearchService._settings
    identity = {"name": "fake-angle", "model_sha256": "0123abcd", "sheet_context": 1.0}
    monkeypatch.setattr(SearchService, "_settings", lambda self, modality: {**settings(self, modality), "identity": identity}
                        if modality == "visual" else settings(self, modality))
    assert service._visual_model({"visual": None}) == ("fake-angle", "0123abcd", 1.0)
    assert service._visual_model({}) == (None, None, 0.0)
    query = Query(figure_id="US1-A", mode="auto", k=10)
    calibration({"fake-angle@0123abcd": {"near": None, "far": None}})
    inherited = service.search(query)  # no entry of its own: the model file's (no thresholds), no note
    assert not any("calibration" in n for n in inherited.notes)
    calibration({"fake-angle@0123abcd": {"near": None, "far": None}, "fake-angle@0123abcd@sheet=1": {"near": 0.0, "far": None}})
    own = service.search(query)  # its own entry: every head is near, auto ranks as avg
    average = service.search(Query(figure_id="US1-A", mode="avg", k=10, rerank=rerank_by_default("auto")))
    assert [h.figure_id for h in own.hits] == [h.figure_id for h in average.hits] != [h.figure_id for h in inherited.hits]


def test_a_set_option_that_is_not_key_value_is_refused_by_name(tmp_path):
    from types import SimpleNamespace

    tuning = _tuning()
    args = SimpleNamespace(work=tmp_path, data=tmp_path, visual_model="hog", no_default_sets=True, reuse=False,
                           set=[f"{tmp_path},same-patent,name=OCR build, all"])
    with pytest.raises(SystemExit, match="' all' is not KEY=VALUE"):
        tuning.training_sets(args)


def test_a_collection_indexed_without_the_sheet_context_does_not_match_a_spec_with_it(tmp_path, monkeypatch):
    """Before stop 28 only the name and the model digest were compared, so a plain index passed for ``@sheet=1``
    and the calibration would have replayed plain vectors under the mixed spec's key."""
    from types import SimpleNamespace

    from figsearch.embed import catalog

    tuning = _tuning()
    plain = {"name": "backbone", "model_sha256": "d338"}
    wanted = {"plain": plain, "mixed": {**plain, "sheet_context": 1.0}}
    monkeypatch.setattr(catalog, "create_visual", lambda spec: SimpleNamespace(identity=wanted[spec]))
    monkeypatch.setattr(tuning, "visual_identity", lambda path: plain)
    assert tuning.matches(tmp_path, "plain") and not tuning.matches(tmp_path, "mixed")
