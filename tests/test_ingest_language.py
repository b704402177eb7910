"""Languages at ingest: the XML's lang attributes, detection where they are missing, claims per language."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import ep_xml

from figsearch.ingest import language
from figsearch.ingest.base import Unit, readers
from figsearch.ingest.detect import classify
from figsearch.records import Paragraph, Patent, Section


def read(tmp_path: Path, text: str, name="doc.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    reader = classify(path).name
    return list(readers.create(reader).read(Unit(str(path), reader, path, [path])))


GERMAN = ("Der Thermokopf 12 wird durch die Feder 16 gegen die Andruckwalze 14 gedrückt, "
          "wobei das Papier zwischen dem Kopf und der Walze läuft.")
FRENCH = ("La tête thermique 12 est pressée contre le rouleau presseur 14 par le ressort 16, "
          "et le papier passe entre la tête et le rouleau.")
ENGLISH = "The thermal head 12 is pressed against the platen roller 14 by the spring 16, which is held by the frame."


@pytest.mark.parametrize("text,expected", [
    (ENGLISH, "en"), (GERMAN, "de"), (FRENCH, "fr"),
    ("El dispositivo comprende una cabeza térmica y un rodillo para la impresión del papel.", "es"),
    ("本発明は、サーマルヘッド及びプラテンローラに関する。", "ja"),
    ("12, 14, 16", None), ("", None), ("Thermokopf", None),
])
def test_detect(text, expected):
    assert language.detect(text) == expected


def test_normalise_code():
    assert [language.normalise_code(c) for c in ("DE", "de-DE", " fr ", "", None, "en_GB")] == \
        ["de", "de", "fr", None, None, "en"]


def _b1(root_lang="en", description_lang='lang="en"', claims=("en", "de", "fr")) -> str:
    texts = {"en": "A holder (10).", "de": "Ein Halter (10).", "fr": "Un support (10)."}
    blocks = "".join(
        f'<claims id="claims{i:02d}" lang="{lang}"><claim id="c-{lang}-0001" num="0001">'
        f"<claim-text>{texts.get(lang, 'Holder (10).')}</claim-text></claim>"
        f'<claim id="c-{lang}-0002" num="0002"><claim-text>{texts.get(lang, "")} 2</claim-text></claim></claims>'
        for i, lang in enumerate(claims, 1)
    )
    xml = ep_xml(kind="B1").replace('lang="en" country="EP"', f'lang="{root_lang}" country="EP"')
    xml = xml.replace('<description id="desc" lang="en">', f'<description id="desc" {description_lang}>')
    start, end = xml.index('<claims id="claims01"'), xml.index("</claims>") + len("</claims>")
    return xml[:start] + blocks + xml[end:]


def test_ep_b1_keeps_every_claims_block_with_its_language(tmp_path):
    [doc] = read(tmp_path, _b1())
    patent = doc.patent
    assert patent.lang == "en" and patent.language == "en"
    claims = [(p.lang, p.number, p.text) for p in patent.paragraphs if p.section == Section.CLAIMS]
    assert claims == [
        ("en", "0001", "A holder (10)."), ("en", "0002", "A holder (10). 2"),
        ("de", "0001", "Ein Halter (10)."), ("de", "0002", "Ein Halter (10). 2"),
        ("fr", "0001", "Un support (10)."), ("fr", "0002", "Un support (10). 2"),
    ]
    assert patent.claims == ["A holder (10).", "A holder (10). 2"]  # the working language's block, as before
    assert {p.lang for p in patent.paragraphs if p.section == Section.DESCRIPTION} == {"en"}
    # the figures' brief descriptions still come from the description only
    assert {i.key: i.description for i in doc.images if i.key == "f0001"} == \
        {"f0001": "FIG. 1 is a view number 1 of the widget."}


def test_ep_german_document(tmp_path):
    [doc] = read(tmp_path, _b1(root_lang="de", description_lang='lang="de"', claims=("de", "en", "fr")))
    patent = doc.patent
    assert patent.lang == "de"
    assert {p.lang for p in patent.paragraphs if p.section == Section.DESCRIPTION} == {"de"}
    assert patent.claims == ["A holder (10).", "A holder (10). 2"]  # English still preferred for Patent.claims


def test_ep_without_lang_attributes_is_detected(tmp_path):
    xml = _b1(description_lang="", claims=("de",)).replace(' lang="en" country="EP"', ' country="EP"')
    xml = xml.replace("The holder 10 has a base 12 &amp; a lid 14.", GERMAN)
    xml = xml.replace("As shown in FIG. 1, the base 12 carries the lid 14.",
                      "Wie in Fig. 1 gezeigt, trägt der Sockel 12 den Deckel 14 und die Feder 16 mit der Platte.")
    [doc] = read(tmp_path, xml)
    by_number = {p.number: p.lang for p in doc.patent.paragraphs if p.section == Section.DESCRIPTION}
    assert by_number["0001"] == "de" and by_number["0003"] == "de"
    assert doc.patent.lang == "de"  # the language most of the description is in


def test_unsupported_language_is_kept_noted_and_counted(tmp_path):
    xml = _b1(root_lang="es", description_lang='lang="es"', claims=("es",))
    [doc] = read(tmp_path, xml)  # never a crash
    patent = doc.patent
    assert patent.lang == "es" and patent.paragraphs  # the text is kept
    note = language.language_note(patent)
    assert note and "es" in note and "English rules" in note
    counts = language.language_counts([patent, Patent("EP1A1", "EP", "1", lang="en")])
    assert counts.documents == {"es": 1, "en": 1}
    assert counts.unsupported_documents == 1
    assert "1 document(s) in a language without sign linking: es" in counts.describe()


def test_japanese_text_without_declaration():
    patent = Patent("JP1A", "JP", "1", paragraphs=[
        Paragraph("本発明は、サーマルヘッド１２及びプラテンローラ１４に関する。"),
        Paragraph("図１は、本発明の実施形態を示す図である。"),
    ])
    language.annotate(patent)
    assert patent.lang == "ja" and {p.lang for p in patent.paragraphs} == {"ja"}
    assert not language.is_supported(patent.lang)
    assert language.linking_language(patent.lang) == "en"
    assert language.language_counts([patent]).as_dict() == {
        "documents": {"ja": 1}, "paragraphs": {"ja": 2}, "unsupported_documents": 1}


def test_annotate_keeps_paragraph_languages_and_fills_the_rest():
    patent = Patent("EP1B1", "EP", "1", paragraphs=[
        Paragraph("12", lang=None),
        Paragraph(FRENCH, section=Section.CLAIMS, lang="FR"),
        Paragraph(ENGLISH, lang=None),
    ])
    language.annotate(patent, "en")
    assert [p.lang for p in patent.paragraphs] == ["en", "fr", "en"]
    assert language.description_language(patent.paragraphs) == "en"


def test_count_languages_from_rows():
    counts = language.count_languages([("en", ["en", "en"]), ("de", ["de", "en"]), (None, [None])])
    assert counts.documents == {"en": 1, "de": 1, "unknown": 1}
    assert counts.paragraphs == {"en": 3, "de": 1, "unknown": 1}
    assert counts.unsupported_documents == 0


@pytest.mark.shared_data
def test_shared_ep_languages(shared_data):
    from figsearch.ingest import xmlsafe
    from figsearch.ingest.ep_xml import parse_document

    folder = shared_data / "xml-text-only" / "ep"
    german = []
    for path in sorted(folder.glob("*.xml")):
        patent = parse_document(xmlsafe.parse(path.read_bytes(), str(path)), str(path), folder).patent
        if patent.lang == "de":
            german.append(path.name)
        for paragraph in patent.paragraphs:
            detected = language.detect(paragraph.text)
            assert detected in (None, paragraph.lang), (path.name, paragraph.number, paragraph.text[:80])
        if patent.kind in ("B1", "B2") and any(p.section == Section.CLAIMS for p in patent.paragraphs):
            claims = {lang: [p.number for p in patent.paragraphs if p.section == Section.CLAIMS and p.lang == lang]
                      for lang in ("en", "de", "fr")}
            assert claims["en"] and claims["en"] == claims["de"] == claims["fr"], path.name
    assert len(german) == 6
