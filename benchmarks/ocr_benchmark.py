"""OCR engines on real patent sheets: reference-numeral precision/recall, label recall, seconds per sheet.

Ground truth (see ocr_ground_truth.json): the numerals printed in each sheet of EP1667425A1 and the
two US applications, listed by hand, kept when the description text contains them as a whole token
("the signs that a sheet's description cites and that are visible in it"). Figure labels: the
"FIG. n" lines of ../shared/data/figure-labels/*.json.

Two precisions are printed:
- ``raw``: every numeral the engine read (axis ticks and table values count as errors);
- ``cited``: the numerals the pipeline stores as reference signs, i.e. those the description's
  sign vocabulary (figsearch.link) contains; this is what ``figsearch ocr`` keeps as kind "numeral".

Time: CPU seconds of the process per sheet (all threads; robust on a shared machine) and wall seconds.

    OMP_THREAD_LIMIT=1 python benchmarks/ocr_benchmark.py --engines tesseract,craft
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from lxml import etree
from PIL import Image

from figsearch.link.mentions import mentioned_signs
from figsearch.link.patent_text import cited
from figsearch.link.sentences import split_sentences
from figsearch.ocr import create_engine, parse_signs
from figsearch.ocr.signs import FIGURE_LABEL, NUMERAL, normalise_label

HERE = Path(__file__).resolve().parent


def description_text(xml: Path) -> str:
    root = etree.parse(str(xml)).getroot()
    node = root.find(".//description")
    return " ".join(node.itertext()) if node is not None else ""


def patent_of(sheet: str) -> str:
    return sheet.split("/")[1] if sheet.startswith("ep-") else sheet.split("/")[1]


def load_truth(data: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(sheet -> cited visible numerals, sheet -> description vocabulary from figsearch.link)."""
    sheets = json.loads((HERE / "ocr_ground_truth.json").read_text())["sheets"]
    texts: dict[str, str] = {}
    truth, vocab = {}, {}
    for sheet, visible in sheets.items():
        folder = (data / sheet).parent
        if folder not in texts:
            xml = next(iter(sorted(folder.glob("*.xml")) + sorted(folder.glob("*.XML"))))
            texts[folder] = description_text(xml)
        text = texts[folder]
        tokens = set(re.findall(r"(?<![\w.,/-])(\d+[a-z]?)(?![\w/]|[.,]\d)", text))
        truth[sheet] = {s for s in visible if s in tokens}
        vocab[sheet] = mentioned_signs(split_sentences(text))
    return truth, vocab


def label_truth(data: Path) -> dict[Path, set[str]]:
    """The JSON files are OCR lines of the sheets; a sideways label shows up as a "FIG." line and a
    separate number line, so numbers standing alone (or next to a FIG word) are labels when the sheet
    has FIG words at all."""
    out = {}
    for js in sorted((data / "figure-labels").glob("*.json")):
        lines = [d["DetectedText"] for d in json.loads(js.read_text()) if d.get("Type") == "LINE"]
        labels = {normalise_label(t) for t in lines} - {None}
        if any(re.search(r"\b(FIG|Fig|Figure)\b", t) for t in lines):
            for t in lines:
                if re.fullmatch(r"\s*\d{1,2}\s*", t) or re.search(r"\b(FIG|Fig|Figure)\b", t):
                    labels |= {f"FIG. {int(n)}" for n in re.findall(r"(?<![\w.])\d{1,2}(?![\w])", t)}
        out[js.with_suffix(".png")] = labels
    return out


def prf(tp: int, predicted: int, relevant: int) -> tuple[float, float]:
    return (tp / predicted if predicted else 1.0, tp / relevant if relevant else 1.0)


def run(engine_name: str, data: Path, truth, vocab, labels, verbose: bool) -> dict:
    engine = create_engine(engine_name)
    warm = Image.new("L", (200, 100), 255)
    engine.read(warm)  # model loading is not a per-sheet cost
    totals = defaultdict(float)
    per_patent = defaultdict(lambda: defaultdict(float))
    for sheet, relevant in truth.items():
        image = Image.open(data / sheet)
        image.load()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        signs = parse_signs(engine.read(image))
        cpu, wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
        raw = {s.text for s in signs if s.kind == NUMERAL}
        kept = {s for s in raw if cited(s, vocab[sheet])}
        for key, found in (("raw", raw), ("cited", kept)):
            totals[f"{key}_tp"] += len(found & relevant)
            totals[f"{key}_pred"] += len(found)
        totals["relevant"] += len(relevant)
        totals["cpu"] += cpu
        totals["wall"] += wall
        totals["sheets"] += 1
        patent = patent_of(sheet)
        per_patent[patent]["tp"] += len(kept & relevant)
        per_patent[patent]["pred"] += len(kept)
        per_patent[patent]["rel"] += len(relevant)
        if verbose:
            print(f"  {Path(sheet).name:40s} cpu {cpu:.2f}s missed {sorted(relevant - kept)} extra {sorted(kept - relevant)}")
    label_tp = label_pred = label_rel = 0
    label_cpu = 0.0
    for png, expected in labels.items():
        image = Image.open(png)
        image.load()
        t_cpu = time.process_time()
        found = {s.text for s in parse_signs(engine.read(image)) if s.kind == FIGURE_LABEL}
        label_cpu += time.process_time() - t_cpu
        label_tp += len(found & expected)
        label_pred += len(found)
        label_rel += len(expected)
        if verbose:
            print(f"  {png.name:40s} labels expected {sorted(expected)} found {sorted(found)}")
    result = {"engine": engine_name, "sheets": int(totals["sheets"]), "relevant": int(totals["relevant"])}
    for key in ("raw", "cited"):
        p, r = prf(int(totals[f"{key}_tp"]), int(totals[f"{key}_pred"]), int(totals["relevant"]))
        result[f"{key}_precision"], result[f"{key}_recall"] = round(p, 3), round(r, 3)
    result["cpu_s_per_sheet"] = round(totals["cpu"] / totals["sheets"], 3)
    result["wall_s_per_sheet"] = round(totals["wall"] / totals["sheets"], 3)
    result["per_patent_cited_pr"] = {
        k: [round(x, 3) for x in prf(int(v["tp"]), int(v["pred"]), int(v["rel"]))] for k, v in per_patent.items()
    }
    lp, lr = prf(label_tp, label_pred, label_rel)
    result["label_precision"], result["label_recall"] = round(lp, 3), round(lr, 3)
    result["label_cpu_s_per_sheet"] = round(label_cpu / max(1, len(labels)), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="tesseract", help="comma-separated engine names")
    default_data = Path(os.environ.get("FIGSEARCH_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data, help="../shared/data or $FIGSEARCH_SHARED_DATA")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"shared data not found at {args.data} (use --data)")
    truth, vocab = load_truth(args.data)
    labels = label_truth(args.data)
    results = []
    for name in args.engines.split(","):
        print(f"== {name}")
        results.append(run(name.strip(), args.data, truth, vocab, labels, args.verbose))
        print(json.dumps(results[-1], indent=1))
    baseline = results[0]
    print("\nengine       raw P/R      cited P/R    labels P/R   cpu s/sheet  wall s/sheet  cpu vs first")
    for r in results:
        print(
            f"{r['engine']:12s} {r['raw_precision']:.3f}/{r['raw_recall']:.3f} {r['cited_precision']:.3f}/{r['cited_recall']:.3f}"
            f"  {r['label_precision']:.3f}/{r['label_recall']:.3f}  {r['cpu_s_per_sheet']:11.3f}  {r['wall_s_per_sheet']:12.3f}"
            f"  {r['cpu_s_per_sheet'] / max(1e-9, baseline['cpu_s_per_sheet']):.2f}x"
        )


if __name__ == "__main__":
    main()
