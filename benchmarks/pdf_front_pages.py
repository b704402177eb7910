"""What the PDF reader makes of the 104 design PDFs: numbers, titles, and drawings given their brief description.

    PYTHONPATH=src python benchmarks/pdf_front_pages.py [--data ../shared/data] [--collection COLL] [--json OUT]

Reads every PDF of ``us-design-pdfs`` with ``figsearch.ingest.pdf.PdfReader`` (pages not rendered: only the
text layer matters here) and prints how many drawing sheets got a label and a sentence from the front page
("FIG. 2 is a front view thereof."), and how many PDFs got every sheet described. With ``--collection`` (a
collection built from the same PDFs) each label given is compared with the label OCR read on the same
sheet (``figsearch.ocr``): agreeing, differing (either may be the wrong one: OCR reads a rotated "FIG. 5" as
"FIG. 3" at times, the reader maps sentences to sheets by count), or no OCR label to compare with. Run it
against an older tree (``PYTHONPATH=/path/to/old/src``) for a baseline; the numbers depend on the code only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def text_layer_documents(folder: Path):
    """(path, the document PdfReader reads from its text layer, or the error's first 200 characters) for every
    PDF of ``folder``, in name order; pages are not rendered (also used by benchmarks/inid_signs.py)."""
    import figsearch.ingest.pdf as pdf_module
    from figsearch.ingest.base import Unit

    pdf_module.imaging.render_pdf_page = lambda pdf, index, source: None  # the text layer alone
    reader = pdf_module.PdfReader()
    for path in sorted(folder.glob("*.pdf")):
        try:
            [document] = reader.read(Unit(str(path), "pdf", path, [path]))
        except Exception as exc:  # noqa: BLE001 - reported, as ingest would
            yield path, None, str(exc)[:200]
            continue
        yield path, document, None


def read_all(folder: Path) -> dict:
    from figsearch.records import FigureRole

    out = {}
    for path, document, error in text_layer_documents(folder):
        if document is None:
            out[path.name] = {"error": error}
            continue
        drawings = [image for image in document.images if image.role == FigureRole.DRAWING]
        out[path.name] = {
            "number": document.patent.publication_number, "title": document.patent.title,
            "date": document.patent.publication_date,
            "sheets": [(image.key, image.label, image.description) for image in drawings],
        }
    return out


def compare_with_ocr(found: dict, collection: Path) -> tuple[int, int, int]:
    from figsearch.errors import NotFound
    from figsearch.store import Collection

    agree = differ = unknown = 0
    with Collection.open(collection) as coll:
        for entry in found.values():
            for key, label, _ in entry.get("sheets", []):
                if not label:
                    continue
                try:
                    ocr_label = coll.figure(f"{entry['number']}-{key}").label
                except NotFound:
                    ocr_label = None
                if not ocr_label:
                    unknown += 1
                elif ocr_label.replace(" ", "").upper() == label.replace(" ", "").upper():
                    agree += 1
                else:
                    differ += 1
    return agree, differ, unknown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--collection", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write what each PDF gave here")
    args = parser.parse_args()
    import figsearch

    start = time.perf_counter()
    found = read_all(args.data / "us-design-pdfs")
    took = time.perf_counter() - start
    sheets = [s for e in found.values() for s in e.get("sheets", [])]
    described = sum(1 for _, _, description in sheets if description)
    whole = sum(1 for e in found.values() if e.get("sheets") and all(d for _, _, d in e["sheets"]))
    titled = sum(1 for e in found.values() if e.get("title"))
    print(f"figsearch from {Path(figsearch.__file__).parent}")
    print(f"{len(found)} PDFs ({sum('error' in e for e in found.values())} unreadable), {titled} with a title, "
          f"{len(sheets)} drawing sheets; {described} with a brief description, "
          f"{whole} PDFs with every sheet described ({took:.1f} s)")
    if args.collection:
        agree, differ, unknown = compare_with_ocr(found, args.collection)
        print(f"labels given vs OCR's on the same sheet: {agree} agree, {differ} differ, {unknown} without an OCR label")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
