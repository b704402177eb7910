"""Words in drawings: precision over every word the reader outputs, recall over every word printed.

Truth: the ``words`` of the hand-read sheet files (``ocr_truth_sheets.json``, ``ocr_holdout2..7_sheets.json``)
and of ``ocr_words_sheets.json`` (stop 27: design drawings added, most with no word at all), TRAINING SIDE
ONLY: sheets of ``us-design-grants`` and odd-numbered ``us-design-2007`` patents are left out.

Each sheet is read once by the default engine as the build reads it (its stored pixels, ``stored_sheet``) (a design PDF
page, whose patent text cites no numeral, with ``numerals_wanted(False)``; the others, a 2007 drawing without
text included, with numerals wanted: ``pipeline.signs.numerals_wanted``); the reading is cached
(``--cache``), and the words are sorted from it twice in the same run: ``before`` (``drawing_words`` only,
the reader before stop 27) and ``after`` (with ``figsearch.ocr.words.clean_words``).

Tokens: the distinct runs of two or more letters in the words the reader outputs for a sheet
(``[A-Za-z]{2,}``, lower-cased: ``ocr_benchmark.word_tokens``, as the truth files list each phrase
once); a token is right when the sheet's truth words hold it. Precision = right / output over all
sheets, recall = right / printed.

Split: by patent, ``dev`` (rules were chosen looking at it) when the first hex digit of the sha1 of the
patent's folder/file stem is even, ``held-out`` otherwise (fixed before any rule was written).

    PYTHONPATH=src:tests python benchmarks/ocr_words_eval.py --cache /tmp/words35/read_stored.json -v

``--design-outputs COLLECTION``: precision over every word COLLECTION stores for the 1,253 training-side
design drawings (judged in ``ocr_words_design_outputs.json``), before and after ``clean_words``.
``--reclean COPY``: sort the words stored in a copy of a collection read before stop 27 through
``clean_words`` (what ``figsearch ocr -c COPY --redo`` stores, without reading again); then
``figsearch index -c COPY`` and ``figsearch evaluate -c ORIGINAL --compare COPY --rule same-patent``
(docs/ocr.md, "Stop 27").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRUTH_FILES = ("ocr_truth_sheets.json", "ocr_holdout2_sheets.json", "ocr_holdout3_sheets.json",
               "ocr_holdout4_sheets.json", "ocr_holdout5_sheets.json", "ocr_holdout6_sheets.json",
               "ocr_holdout7_sheets.json", "ocr_words_sheets.json")
DESIGN_KINDS = ("us-design-pdfs", "us-design-2007")
_TOKEN = re.compile(r"[A-Za-z]{2,}")


def training_side(sheet: str) -> bool:
    """Whether a sheet may be used to choose settings (never us-design-grants nor odd 2007 designs)."""
    source = sheet.split("/")[0]
    if source == "us-design-grants":
        return False
    if source == "us-design-2007":
        return int(re.search(r"(\d+)", sheet.split("/")[-1]).group(1)) % 2 == 0
    return True


def patent_key(sheet: str) -> str:
    parts = sheet.split("#")[0].split("/")
    if parts[0] in ("us-design-2007", "us-design-pdfs", "upair-queries"):
        return parts[0] + "/" + Path(parts[1]).stem
    return "/".join(parts[:2])


def half(sheet: str) -> str:
    return "dev" if int(hashlib.sha1(patent_key(sheet).encode()).hexdigest()[0], 16) % 2 == 0 else "held-out"


def load_truth() -> dict[str, dict]:
    out = {}
    for name in TRUTH_FILES:
        path = HERE / name
        if not path.exists():
            continue
        for sheet, truth in json.loads(path.read_text())["sheets"].items():
            if training_side(sheet) and sheet not in out:
                out[sheet] = {"words": truth["words"], "source": sheet.split("/")[0], "file": name}
    return out


def tokens(texts) -> set[str]:
    return {t.lower() for text in texts for t in _TOKEN.findall(text)}


def stored_sheet(data: Path, sheet: str):
    """A sheet as a build stores it and reads it (``figsearch.imaging``: grey, longest side at most
    ``MAX_SIDE``, tone normalised; a PDF page rendered by the one PDF policy): a PDF page is read at
    1862 x 2400 in a collection, not at the 2560 x 3300 of ``ocr_benchmark.load_sheet``, and the
    phantoms differ between the two."""
    from figsearch.imaging import load_drawing
    from figsearch.tone import normalise_tone

    name, _, page = sheet.partition("#page=")
    image, _ = load_drawing(data / name, page=int(page or 1))
    return normalise_tone(image)


def read_all(sheets, data: Path, cache: Path | None) -> dict:
    """Each sheet's reading (the engine's ``read_sheet``: words kept, header), cached in ``cache``."""
    from figsearch.ocr import create_engine
    from figsearch.ocr.reread import numerals_wanted
    from figsearch.ocr.sheet import one_sheet

    done = json.loads(cache.read_text()) if cache and cache.exists() else {}
    engine = create_engine()
    for n, sheet in enumerate(sheets):
        if sheet in done:
            continue
        image = stored_sheet(data, sheet)
        started = time.process_time()
        with one_sheet(), numerals_wanted(sheet.split("/")[0] != "us-design-pdfs"):
            kept, header = engine.read_sheet(image)
        done[sheet] = {"size": list(image.size), "header": list(header) if header else None,
                       "cpu": time.process_time() - started,
                       "words": [[w.text, list(w.box), w.confidence, w.line, w.rotation, w.data] for w in kept]}
        if cache and n % 10 == 0:
            cache.write_text(json.dumps(done))
        print(f"  read {n + 1}/{len(sheets)} {sheet}", file=sys.stderr)
    if cache:
        cache.write_text(json.dumps(done))
    return done


def all_design_sheets(data: Path) -> list[str]:
    """Every training-side design drawing a build stores: each even-numbered us-design-2007 drawing and
    every page of each us-design-pdfs file after its front page."""
    import pypdfium2 as pdfium

    from figsearch.imaging import PDFIUM_LOCK

    sheets = [f"us-design-2007/{p.name}" for p in sorted((data / "us-design-2007").glob("*.png"))
              if training_side(f"us-design-2007/{p.name}")]
    for pdf in sorted((data / "us-design-pdfs").glob("*.pdf")):
        with PDFIUM_LOCK:
            document = pdfium.PdfDocument(str(pdf))
            pages = len(document)
            document.close()
        sheets += [f"us-design-pdfs/{pdf.name}#page={n}" for n in range(2, pages + 1)]
    return sheets


def sorted_words(reading: dict, clean: bool) -> list:
    """The drawing words ``read_drawing`` sorts out of a cached reading (``clean``: with ``clean_words``)."""
    from figsearch.ocr.base import TextBox
    from figsearch.ocr.drawing import sheet_words

    kept = [TextBox(t, tuple(b), c, line, rot, data) for t, b, c, line, rot, data in reading["words"]]
    header = tuple(reading["header"]) if reading["header"] else None
    return sheet_words(kept, header, clean=clean)


def score(truth: dict, readings: dict, clean: bool, verbose: bool = False) -> dict:
    """Token precision/recall by group (half x source), see the module docstring."""
    acc = defaultdict(Counter)
    for sheet, t in truth.items():
        out = tokens(w.text for w in sorted_words(readings[sheet], clean))
        true = tokens(t["words"])
        right = len(out & true)
        groups = ("all", half(sheet), f"{half(sheet)} {t['source']}",
                  "design" if t["source"] in DESIGN_KINDS else "utility", f"{half(sheet)} " + ("design" if t["source"] in DESIGN_KINDS else "utility"))
        for g in groups:
            a = acc[g]
            a["sheets"] += 1
            a["right"] += right
            a["output"] += len(out)
            a["printed"] += len(true)
            a["phantom_sheets"] += bool(out - true) and not true
            a["wordless"] += not true
        if verbose and (out - true):
            print(f"  {'after' if clean else 'before'} {half(sheet):8s} {sheet[-50:]:50s} wrong {sorted(out - true)[:12]}"
                  f" missed {sorted(true - out)[:6]}")
    return acc


def report(truth: dict, readings: dict) -> None:
    before, after = score(truth, readings, False), score(truth, readings, True)
    print(f"{'group':32s} {'sheets':>6s} {'wordless':>8s} | before P / R (output, phantom sheets) | after P / R (output, phantom sheets)")
    for g in sorted(before, key=lambda g: (g != "all", g)):
        b, a = before[g], after[g]
        p = lambda x: f"{x['right'] / x['output']:.3f}" if x["output"] else "  -  "
        r = lambda x: f"{x['right'] / x['printed']:.3f}" if x["printed"] else "  -  "
        print(f"{g:32s} {b['sheets']:6d} {b['wordless']:8d} | {p(b)} / {r(b)} ({b['output']:4d}, {b['phantom_sheets']:3d})"
              f"          | {p(a)} / {r(a)} ({a['output']:4d}, {a['phantom_sheets']:3d})")


def design_outputs(collection: Path) -> None:
    """Precision over every word a collection stores for the training-side design drawings (every even
    us-design-2007 drawing, every us-design-pdfs page after the front page), before and after
    ``clean_words``, judged by ``ocr_words_design_outputs.json`` (each output looked at)."""
    import sqlite3
    from types import SimpleNamespace

    from figsearch.ocr.words import clean_words

    judged = json.loads((HERE / "ocr_words_design_outputs.json").read_text())["sheets"]
    db = sqlite3.connect(f"file:{collection / 'figsearch.sqlite'}?mode=ro", uri=True)
    sheets = db.execute("SELECT figure_id, source_file, page FROM figures WHERE parent_id IS NULL AND role != 'front_page' "
                        "AND (source_file LIKE '%us-design-pdfs/%' OR source_file LIKE '%us-design-2007/%')").fetchall()
    acc = defaultdict(Counter)
    for figure, source, page in sheets:
        key = source[source.index("us-design-"):] + (f"#page={page}" if page else "")
        if not training_side(key):
            continue
        words = [SimpleNamespace(text=r[0]) for r in
                 db.execute("SELECT text FROM figure_words WHERE figure_id=? ORDER BY seq", (figure,))]
        for group in ("all", half(key), key.split("/")[0]):
            acc[group]["sheets"] += 1
        if not words:
            continue
        if key not in judged or tokens(w.text for w in words) - tokens(judged[key]["output"]):
            raise SystemExit(f"{key}: words {[w.text for w in words]} not judged in ocr_words_design_outputs.json")
        right = tokens(judged[key]["right"])
        for name, out in (("before", tokens(w.text for w in words)), ("after", tokens(w.text for w in clean_words(words)))):
            for group in ("all", half(key), key.split("/")[0]):
                acc[group][f"{name} output"] += len(out)
                acc[group][f"{name} right"] += len(out & right)
                acc[group][f"{name} sheets"] += bool(out)
                acc[group][f"{name} phantom-only sheets"] += bool(out) and not (out & right)
    print(f"training-side design drawings of {collection}: distinct tokens per sheet, right when printed there")
    for group, a in sorted(acc.items(), key=lambda kv: kv[0] != "all"):
        line = f"  {group:16s} {a['sheets']:5d} sheets"
        for name in ("before", "after"):
            n = a[f"{name} output"]
            line += (f" | {name}: {n:3d} tokens on {a[f'{name} sheets']:3d} sheets, precision "
                     f"{a[f'{name} right'] / n if n else float('nan'):.3f}, sheets with phantoms only {a[f'{name} phantom-only sheets']:3d}")
        print(line)


def reclean(collection: Path) -> tuple[int, int, int]:
    """Sort the words stored in ``collection`` again through ``clean_words``, as reading its drawings
    again would (``figsearch ocr -c DIR --redo``; the reader is deterministic, and ``clean_words`` sees only
    the words ``drawing_words`` kept): a sheet's words are cleaned as one list, and a figure cut from a
    sheet keeps what survives of its sheet's. Returns (figures whose words changed, words before, after).
    For ``--retrieval``: a copy of a collection built before stop 27, then ``figsearch index``."""
    import sqlite3
    from types import SimpleNamespace

    from figsearch.ocr.words import clean_words

    db = sqlite3.connect(collection / "figsearch.sqlite")
    rows = db.execute("SELECT w.figure_id, w.seq, w.text, f.parent_id FROM figure_words w JOIN figures f USING (figure_id) "
                      "ORDER BY w.figure_id, w.seq").fetchall()
    by_figure: dict[str, list] = defaultdict(list)
    parent_of: dict[str, str | None] = {}
    for figure, seq, text, parent in rows:
        by_figure[figure].append((seq, text))
        parent_of[figure] = parent
    survivors: dict[str, set[str]] = {}  # per sheet: the texts its cleaned words keep

    def kept_texts(sheet: str) -> set[str]:
        if sheet not in survivors:
            words = [SimpleNamespace(text=t) for _, t in by_figure.get(sheet, [])]
            survivors[sheet] = {w.text for w in clean_words(words)}
        return survivors[sheet]

    changed, before, after = 0, 0, 0
    with db:
        for figure, words in by_figure.items():
            keep = kept_texts(parent_of[figure] or figure)
            drop = [seq for seq, text in words if text not in keep]
            before += len(words)
            after += len(words) - len(drop)
            if drop:
                changed += 1
                db.executemany("DELETE FROM figure_words WHERE figure_id=? AND seq=?", [(figure, seq) for seq in drop])
    db.close()
    return changed, before, after


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, help="the readings, kept between runs (read again when absent)")
    parser.add_argument("-v", "--verbose", action="store_true", help="the wrong and missed tokens of each sheet")
    parser.add_argument("--reclean", type=Path, metavar="COLLECTION",
                        help="rewrite the words stored in COLLECTION (a copy!) as stop 27 reads them, and stop")
    parser.add_argument("--design-outputs", type=Path, metavar="COLLECTION",
                        help="precision over every word COLLECTION stores for the training-side design drawings, and stop")
    args = parser.parse_args(argv)
    if args.design_outputs:
        design_outputs(args.design_outputs)
        return 0
    if args.reclean:
        changed, before, after = reclean(args.reclean)
        print(f"{args.reclean}: words of {changed} figures changed, {before} words stored before, {after} after")
        return 0
    data = args.data if args.data.exists() else Path("../shared/data")
    truth = load_truth()
    started = time.process_time()
    readings = read_all(list(truth), data, args.cache)
    print(f"{len(truth)} training-side sheets ({Counter(t['source'] for t in truth.values())}); "
          f"reading CPU {sum(readings[s]['cpu'] for s in truth):.0f} s (this run {time.process_time() - started:.0f} s)")
    if args.verbose:
        score(truth, readings, False, verbose=True)
        score(truth, readings, True, verbose=True)
    report(truth, readings)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
