"""Front-page INID codes read as reference signs: what linking makes of the design PDFs, before and after.

    # one tree's output (run it once per tree, same data, same collection):
    PYTHONPATH=src python benchmarks/inid_signs.py --collection COLL --json /tmp/after.json
    PYTHONPATH=/tmp/pre/src python benchmarks/inid_signs.py --collection COLL --json /tmp/before.json
    # the differences:
    python benchmarks/inid_signs.py --compare /tmp/before.json /tmp/after.json
    # end to end, OCR included: two fresh collections, one per tree, then their differences
    PYTHONPATH=/tmp/pre/src python -m figsearch ingest ../shared/data/us-design-pdfs -c /tmp/coll-before -j 2 -q
    PYTHONPATH=src python -m figsearch ingest ../shared/data/us-design-pdfs -c /tmp/coll-after -j 2 -q
    python benchmarks/inid_signs.py --compare-collections /tmp/coll-before /tmp/coll-after

Reads every PDF of ``us-design-pdfs`` with ``figsearch.ingest.pdf.PdfReader`` (pages not rendered: only the
text layer matters), builds what linking builds from its text (``PatentText.of``: sentences, the sign
vocabulary; ``glossary``) and, with ``--collection`` (a collection built from the same PDFs, opened read
only), relinks each figure stored there from the signs OCR read in it, as ``figsearch ocr`` does when a
description changed (``pipeline.signs._ensure_text``): the numerals the description cites stay signs, the
rest become numbers, and each figure gets its linked sentences. No OCR runs: the drawings' signs are the
stored ones, so the numbers depend on the code only.

``--compare`` prints the glossary entries, vocabulary signs, figure signs (numerals kept as signs) and sign
links of one run that the other lacks, each marked INID where the sign stands in parentheses in the
before-run's sentence and is a two-digit code of WIPO ST.9 (the front page's "(10)", "(45)", ...) or the Locarno
edition inside field (51) ("LOC (9) Cl."). Links are
compared by (figure, reason, sign) and their sentence's text with every parenthesised number and all spacing
taken out, since taking the codes out of the text changes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

#: WIPO ST.9's two-digit codes (as figsearch.ingest.inid.CODES; repeated so that a baseline tree without it runs)
ST9 = set([*range(10, 20), *range(21, 29), *range(30, 35), *range(40, 49), *range(51, 59), *range(60, 69),
           *range(71, 77), *range(81, 90)])


def read_all(folder: Path, collection: Path | None) -> dict:
    from pdf_front_pages import text_layer_documents

    from figsearch.link.glossary import glossary
    from figsearch.link.patent_text import PatentText, as_numerals

    coll = None
    if collection is not None:
        from figsearch.store import Collection

        coll = Collection.open(collection)
    out = {}
    try:
        for path, document, error in text_layer_documents(folder):
            if document is None:
                out[path.name] = {"error": error}
                continue
            patent = document.patent
            text = PatentText.of(patent)
            by_index = {s.index: s.text for s in text.sentences}
            entry = {
                "number": patent.publication_number,
                "sentences": [s.text for s in text.sentences],
                "glossary": [[g.sign, g.term, by_index.get(g.sentence_index, "")]
                             for g in glossary(patent.publication_number, text.sentences, text.lang, text.mentions)],
                "vocabulary": sorted(text.vocabulary),
                "figures": {},
            }
            if coll is not None:
                for figure_id, label in coll.signs.read_figures(patent.publication_number):
                    signs = text.classify(as_numerals(coll.signs.of(figure_id)))
                    entry["figures"][figure_id] = {
                        "signs": [s.text for s in signs if s.kind == "numeral"],
                        "links": [[link.reason, link.sign, by_index.get(link.sentence_index, "")]
                                  for link in text.links(label, signs)],
                    }
            out[path.name] = entry
    finally:
        if coll is not None:
            coll.close()
    return out


def _bare(sentence: str) -> str:
    return re.sub(r"\s+", "", re.sub(r"\(\s*\d\s?\d?\s*\)", "", sentence))


def _inid(sign: str, sentence: str) -> bool:
    """An ST.9 code in parentheses, or the Locarno edition of field (51): "LOC (10) Cl."."""
    if not sign.isdigit():
        return False
    if re.search(rf"\bLOC\s*\(\s*{sign}\s*\)", sentence):
        return True
    return int(sign) in ST9 and re.search(rf"\(\s*{sign[0]}\s?{sign[1:]}\s*\)", sentence) is not None


def compare(before: dict, after: dict) -> None:
    counts = {}
    for kind in ("glossary", "vocabulary", "figure signs", "links"):
        counts[kind] = {"before": 0, "after": 0, "removed": [], "added": []}
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, {}), after.get(name, {})
        number = b.get("number") or a.get("number")
        sentences_b = b.get("sentences", [])

        def sign_sentences(sign):  # the before-run's sentences that print the sign
            return [s for s in sentences_b if re.search(rf"(?<![\d,.]){re.escape(sign)}(?![\d,])", s)]

        pairs = {
            "glossary": ({(g[0], g[1]) for g in b.get("glossary", [])}, {(g[0], g[1]) for g in a.get("glossary", [])}),
            "vocabulary": (set(b.get("vocabulary", [])), set(a.get("vocabulary", []))),
            "figure signs": ({(f, s) for f, v in b.get("figures", {}).items() for s in v["signs"]},
                             {(f, s) for f, v in a.get("figures", {}).items() for s in v["signs"]}),
            "links": ({(f, r, s, _bare(t)) for f, v in b.get("figures", {}).items() for r, s, t in v["links"]},
                           {(f, r, s, _bare(t)) for f, v in a.get("figures", {}).items() for r, s, t in v["links"]}),
        }
        gloss_text = {g[0]: g[2] for g in b.get("glossary", [])}
        for kind, (old, new) in pairs.items():
            counts[kind]["before"] += len(old)
            counts[kind]["after"] += len(new)
            for item, where in ((sorted(old - new), "removed"), (sorted(new - old), "added")):
                for entry in item:
                    sign = entry if isinstance(entry, str) else entry[0] if kind == "glossary" else entry[1] \
                        if kind == "figure signs" else entry[2]
                    context = gloss_text.get(sign, "") if kind == "glossary" else ""
                    inid = _inid(sign, context) if context else any(_inid(sign, s) for s in sign_sentences(sign))
                    counts[kind][where].append((number, entry, inid))
    for kind, c in counts.items():
        removed_inid = sum(1 for *_, inid in c["removed"] if inid)
        print(f"{kind}: {c['before']} before, {c['after']} after; removed {len(c['removed'])} "
              f"({removed_inid} INID, {len(c['removed']) - removed_inid} other), added {len(c['added'])}")
    for kind, c in counts.items():
        for where in ("removed", "added"):
            for number, entry, inid in c[where]:
                if kind == "links" or not inid:
                    print(f"  {kind} {where} {'INID ' if inid else 'other'} {number} {entry}")


def compare_collections(before: Path, after: Path) -> None:
    """Two collections built from the same PDFs by two trees (``figsearch ingest``, OCR included): their
    glossaries, stored signs, figure-sentence links (by the sentence's text as ``_bare`` leaves it) and
    figures (label, role, description, title)."""
    import sqlite3

    def load(root: Path) -> dict:
        db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
        try:
            return {
                "glossary": {(p, s, t): text or "" for p, s, t, text in db.execute(
                    "SELECT g.publication_number, g.sign, g.term, s.text FROM glossary g LEFT JOIN sentences s "
                    "ON s.publication_number = g.publication_number AND s.idx = g.sentence_idx")},
                "signs": set(db.execute("SELECT figure_id, text, kind, x0, y0, x1, y1 FROM reference_signs")),
                "links": {(f, r, s, _bare(t)) for f, r, s, t in db.execute(
                    "SELECT fs.figure_id, fs.reason, fs.sign, s.text FROM figure_sentences fs JOIN sentences s "
                    "ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx")},
                "figures": set(db.execute("SELECT f.figure_id, f.label, f.role, f.description, p.title "
                                          "FROM figures f JOIN patents p USING (publication_number)")),
            }
        finally:
            db.close()

    b, a = load(before), load(after)
    for kind in ("glossary", "signs", "links", "figures"):
        removed, added = sorted(set(b[kind]) - set(a[kind])), sorted(set(a[kind]) - set(b[kind]))
        inid = sum(_inid(k[1], b[kind][k]) for k in removed) if kind == "glossary" else 0
        print(f"{kind}: {len(b[kind])} before, {len(a[kind])} after; removed {len(removed)}"
              + (f" ({inid} INID)" if kind == "glossary" else "") + f", added {len(added)}")
        for entry in removed:
            if kind != "glossary" or not _inid(entry[1], b[kind][entry]):
                print(f"  {kind} removed {entry}")
        for entry in added:
            print(f"  {kind} added {entry}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--collection", type=Path, default=None, help="a collection built from the same PDFs")
    parser.add_argument("--json", type=Path, default=None, help="write what each PDF gave here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="two --json outputs")
    parser.add_argument("--compare-collections", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="two collections ingested from us-design-pdfs by the two trees")
    args = parser.parse_args()
    if args.compare_collections:
        compare_collections(*args.compare_collections)
        return
    if args.compare:
        compare(*(json.loads(p.read_text()) for p in args.compare))
        return
    import figsearch

    start = time.perf_counter()
    found = read_all(args.data / "us-design-pdfs", args.collection)
    took = time.perf_counter() - start
    print(f"figsearch from {Path(figsearch.__file__).parent}")
    print(f"{len(found)} PDFs ({sum('error' in e for e in found.values())} unreadable): "
          f"{sum(len(e.get('glossary', [])) for e in found.values())} glossary entries, "
          f"{sum(len(e.get('vocabulary', [])) for e in found.values())} vocabulary signs, "
          f"{sum(len(f['signs']) for e in found.values() for f in e.get('figures', {}).values())} figure signs, "
          f"{sum(len(f['links']) for e in found.values() for f in e.get('figures', {}).values())} links ({took:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
