"""Embedding what is new: stored vectors, input digests, figures without text, unreadable images."""

from __future__ import annotations

import numpy as np
from _search_helpers import CALLS, add_patent, hand_collection

from figsearch.embed.catalog import create_text, create_visual, encoder_key
from figsearch.link.text import WORDS_SHARE
from figsearch.pipeline.embed import embed_text, embed_visual, plan_visual, text_digest, text_vector
from figsearch.records import DrawingWord
from figsearch.store import Collection


def test_only_new_or_changed_drawings_are_embedded(collection_dir):
    hand_collection(collection_dir)
    encoder = create_visual("fake-angle")
    key = encoder_key(encoder)
    with Collection.open(collection_dir, write=True) as c:
        seen = []
        report = embed_visual(c, encoder, progress=seen.append)
        assert report.embedded == 5 and sum(seen) == 5  # drawings only: the front page is not embedded
        stored = c.vectors.inputs("visual", key)
        assert "US1-F0" not in stored and stored["US1-A"] == c.figure("US1-A").image_sha256
        calls = CALLS["visual"]
        assert embed_visual(c, encoder).embedded == 0 and CALLS["visual"] == calls
        add_patent(c, "US2", [("C", 61, "rotor"), ("D", 90, "rotor blade hub")])  # C's image changed
        todo, unchanged = plan_visual(c, encoder)
        assert [f.figure_id for f, _ in todo] == ["US2-C"] and unchanged == 4
        embed_visual(c, encoder, todo)
        vector = c.vectors.fetch("visual", key, ["US2-C"])["US2-C"]
        np.testing.assert_allclose(vector, [np.cos(np.radians(61)), np.sin(np.radians(61))], atol=1e-6)


def test_text_vector_is_the_normalised_mean_and_absent_without_text(collection_dir):
    hand_collection(collection_dir)
    encoder = create_text("fake-words")
    key = encoder_key(encoder)
    with Collection.open(collection_dir, write=True) as c:
        report = embed_text(c, encoder)
        assert report.embedded == 4  # E has neither sentences, description nor title
        # two linked sentences beside its description "rotor": mean of (1,0,0,0), (1,0,0,0), (0,0,1,0)
        c.db.execute("INSERT INTO sentences VALUES ('US2', 0, NULL, 'The rotor turns.')")
        c.db.execute("INSERT INTO sentences VALUES ('US2', 1, NULL, 'A hub holds it.')")
        c.db.executemany("INSERT INTO figure_sentences VALUES ('US2-C', 'US2', ?, 'sign', '12')", [(0,), (1,)])
        again = embed_text(c, encoder)
        assert again.embedded == 1 and again.unchanged == 3
        vectors = c.vectors.fetch("text", key, ["US2-C", "EP3-E"])
        assert "EP3-E" not in vectors  # no text, no vector (never a zero vector)
        np.testing.assert_allclose(vectors["US2-C"], np.array([2, 0, 1, 0]) / 5 ** 0.5, atol=1e-6)
        assert c.vectors.inputs("text", key)["US2-C"] == text_digest(["rotor", "The rotor turns.", "A hub holds it."])
        # the figure loses its text: its text vector goes (re-ingesting an unchanged sheet keeps the
        # description that reading it derived, so the description is cleared by hand)
        add_patent(c, "US2", [("C", 60, None), ("D", 90, "rotor blade hub")], title=None)
        c.db.execute("UPDATE figures SET description=NULL WHERE figure_id='US2-C'")
        c.db.execute("DELETE FROM figure_sentences")
        assert embed_text(c, encoder).removed == 1
        assert "US2-C" not in c.vectors.inputs("text", key)


def test_unreadable_stored_image_is_reported_and_retried_later(collection_dir):
    hand_collection(collection_dir)
    encoder = create_visual("fake-angle")
    with Collection.open(collection_dir, write=True) as c:
        c.path(c.figure("US1-B").image_path).write_bytes(b"not a png")
        report = embed_visual(c, encoder)
        assert report.embedded == 4 and [f for f, _ in report.failed] == ["US1-B"]
        assert "cannot read stored image" in report.failed[0][1]
        assert [f.figure_id for f, _ in plan_visual(c, encoder)[0]] == ["US1-B"]


def test_drawing_words_join_the_text_vector_with_their_share(collection_dir):
    hand_collection(collection_dir)
    encoder = create_text("fake-words")
    key = encoder_key(encoder)
    with Collection.open(collection_dir, write=True) as c:
        assert embed_text(c, encoder).embedded == 4
        before = c.vectors.inputs("text", key)
        # C's description is "rotor"; its drawing reads "BLADE". E had no text at all; its drawing reads "HUB"
        c.words.write("US2-C", [DrawingWord("BLADE", (0, 0, 5, 2), 0.95, 1)])
        c.words.write("EP3-E", [DrawingWord("HUB", (0, 0, 5, 2), 0.95, 1)])
        report = embed_text(c, encoder)
        assert report.embedded == 2 and report.unchanged == 3  # only the figures whose words changed
        vectors = c.vectors.fetch("text", key, ["US2-C", "EP3-E"])
        share = WORDS_SHARE
        expected = np.array([1 - share, share, 0, 0]) / np.hypot(1 - share, share)
        np.testing.assert_allclose(vectors["US2-C"], expected, atol=1e-6)
        np.testing.assert_allclose(vectors["EP3-E"], [0, 0, 1, 0], atol=1e-6)  # words alone make a text
        after = c.vectors.inputs("text", key)
        assert after["US2-C"] != before["US2-C"] and after["US1-A"] == before["US1-A"]
        assert embed_text(c, encoder).embedded == 0  # nothing changed: nothing redone
        c.words.write("US2-C", [])  # the words go: back to the sentences' vector and digest
        assert embed_text(c, encoder).embedded == 1
        assert c.vectors.inputs("text", key)["US2-C"] == before["US2-C"]


def test_text_vector_mixes_normalised_parts():
    sentences = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]], np.float32)  # mean (2,0,1,0)/3
    words = np.array([0, 4, 0, 0], np.float32)
    mean = np.array([2, 0, 1, 0]) / 5 ** 0.5
    mixed = 0.5 * mean + 0.5 * np.array([0, 1, 0, 0])
    np.testing.assert_allclose(text_vector(sentences, words, 0.5), mixed / np.linalg.norm(mixed), atol=1e-6)
    np.testing.assert_allclose(text_vector(sentences, None, 0.5), mean, atol=1e-6)
    np.testing.assert_allclose(text_vector(None, words, 0.5), [0, 1, 0, 0], atol=1e-6)


def test_update_collection_uses_encoders_already_loaded_for_a_small_remainder(collection_dir, monkeypatch):
    """The overlapped build hands its encoders to the index stage, which then loads no model again;
    a remainder larger than ``LOADED_ENCODER_WORK`` gets a fresh encoder (on every thread)."""
    from figsearch.pipeline import index

    hand_collection(collection_dir)
    created = []
    for name in ("create_visual", "create_text"):
        real = getattr(index, name)
        monkeypatch.setattr(index, name, lambda spec, _real=real, _name=name: created.append(_name) or _real(spec))
    loaded = {("visual", "fake-angle"): create_visual("fake-angle"), ("text", "fake-words"): create_text("fake-words")}
    with Collection.open(collection_dir, write=True) as c:
        monkeypatch.setattr(index, "LOADED_ENCODER_WORK", 3)  # 5 drawings, 4 of them with text
        report = index.update_collection(c, visual_model="fake-angle", text_model="fake-words", loaded=loaded)
        assert {e.modality: e.embedded for e in report.embedded} == {"visual": 5, "text": 4}
        assert created == ["create_visual", "create_text"]  # more than 3 each: fresh ones
        created.clear()
        add_patent(c, "US2", [("C", 61, "rotor"), ("D", 90, "rotor blade hub")])  # one drawing changed
        report = index.update_collection(c, visual_model="fake-angle", text_model="fake-words", loaded=loaded)
        assert {e.modality: e.embedded for e in report.embedded}["visual"] == 1
        assert created == []  # the loaded ones
        assert index.update_collection(c, visual_model="fake-angle", text_model="fake-words",
                                       loaded={("visual", "other-spec"): loaded[("visual", "fake-angle")]}).embedded
        assert created == ["create_visual", "create_text"]  # another spec: loaded as before
