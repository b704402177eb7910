"""Metadata that travels beside images: tables (CSV/TSV), JSON record lists, per-image sidecars.

Three generic shapes are understood, whatever the folder is called:

- a *metadata table*: a CSV/TSV/TXT table whose rows start with (or have a column of)
  publication numbers, e.g. ``USD0534331<TAB>D1-121<TAB>Pet chew``; applies to the images
  in its folder and below;
- a *metadata JSON*: ``{"patents": [{"id": "US-123-B2", "title": ...}, ...]}`` or an object
  keyed by publication numbers; same scope;
- a *sidecar*: ``fig1.json`` / ``fig1.txt`` beside ``fig1.png`` (or any JSON/TXT inside a
  folder named by a patent number), with fields such as title, abstract, fig_desc.

Only known fields are used; anything else in a sidecar (OCR boxes, component labels) is
not patent text and is left out.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from figsearch.ingest.numbers import find_in_text
from figsearch.ingest.us_xml import locarno, uspc
from figsearch.records import Classification

log = logging.getLogger(__name__)

MAX_METADATA_BYTES = 64 << 20

_ID_KEYS = ("publication_number", "publicationnumber", "patent_number", "patentnumber", "patent", "number",
            "id", "doc_number", "docnumber", "pub_number", "publication")
_TITLE_KEYS = ("title", "invention_title", "name")
_ABSTRACT_KEYS = ("abstract",)
_DATE_KEYS = ("publication_date", "publicationdate", "date", "date_publ", "pub_date")
_FIG_KEYS = ("fig_desc", "figure_description", "description_of_figure", "caption_of_figure")
_FIGS_KEYS = ("all_fig_descs", "fig_descs", "figure_descriptions", "brief_description_of_drawings")
_TEXT_KEYS = ("description", "text", "paragraphs")
_CLAIM_KEYS = ("claims", "claim")
_CLASS_KEYS = {"uspc": "USPC", "class": "USPC", "uspc_class": "USPC", "locarno": "Locarno", "loc": "Locarno",
               "ipc": "IPC", "cpc": "CPC"}


@dataclass
class MetaRecord:
    publication: str | None = None
    title: str | None = None
    abstract: str | None = None
    date: str | None = None
    classifications: list[Classification] = field(default_factory=list)
    figure_description: str | None = None  # this image's own sentence (a sidecar's fig_desc)
    figure_descriptions: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)

    def merge(self, other: MetaRecord) -> None:
        """Fill what is missing here from ``other``."""
        for name in ("publication", "title", "abstract", "date", "figure_description"):
            if not getattr(self, name) and getattr(other, name):
                setattr(self, name, getattr(other, name))
        for name in ("classifications", "figure_descriptions", "paragraphs", "claims"):
            mine = getattr(self, name)
            mine.extend(v for v in getattr(other, name) if v not in mine)


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_").replace("__", "_")


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                parsed = ast.literal_eval(stripped)  # python-literal lists in CSV cells
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return [stripped]
            return [str(v).strip() for v in parsed if str(v).strip()] if isinstance(parsed, (list, tuple)) else []
        return [stripped] if stripped else []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
    return []


def _date(value) -> str | None:
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) == 8:
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return None


def _classification(scheme: str, value: str) -> Classification | None:
    value = value.strip()
    if not value:
        return None
    if scheme == "USPC":
        if re.fullmatch(r"[A-Z]{0,2}\d{1,3}\s*[-/]\s*[\d.A-Z]+", value):
            klass, sub = re.split(r"\s*[-/]\s*", value, maxsplit=1)
            return Classification("USPC", f"{klass}/{sub}")
        code = uspc(value.rjust(4)) if len(value) >= 4 else value
        return Classification("USPC", code) if code else None
    if scheme == "Locarno":
        code = locarno(value)
        return Classification("Locarno", code) if code else None
    return Classification(scheme, re.sub(r"\s+", " ", value))


def record_from_mapping(data: dict) -> MetaRecord:
    """A MetaRecord from one JSON object or table row (known keys only)."""
    record = MetaRecord()
    fields = {_norm_key(k): v for k, v in data.items()}
    for key in _ID_KEYS:
        if isinstance(fields.get(key), (str, int)) and str(fields[key]).strip():
            value = str(fields[key]).strip()
            found = find_in_text(value)
            if not found and re.fullmatch(r"D?\d{6,11}", value.upper()):
                found = find_in_text("US" + value.upper())  # a bare USPTO number ("D0937859")
            if found:
                record.publication = found.publication_number
                break
    for keys, name in ((_TITLE_KEYS, "title"), (_ABSTRACT_KEYS, "abstract")):
        for key in keys:
            if isinstance(fields.get(key), str) and fields[key].strip():
                setattr(record, name, re.sub(r"\s+", " ", fields[key]).strip())
                break
    for key in _DATE_KEYS:
        if fields.get(key):
            record.date = _date(fields[key])
            if record.date:
                break
    for key in _FIG_KEYS:
        values = _as_list(fields.get(key))
        if values:
            record.figure_description = values[0]
            record.figure_descriptions.extend(v for v in values if v not in record.figure_descriptions)
            break
    for key in _FIGS_KEYS:
        record.figure_descriptions.extend(v for v in _as_list(fields.get(key)) if v not in record.figure_descriptions)
    for key in _TEXT_KEYS:
        record.paragraphs.extend(_as_list(fields.get(key)))
    for key in _CLAIM_KEYS:
        record.claims.extend(_as_list(fields.get(key)))
    for key, scheme in _CLASS_KEYS.items():
        for value in _as_list(fields.get(key)):
            for part in re.split(r"\s*[,;]\s*", value):
                item = _classification(scheme, part)
                if item and item not in record.classifications:
                    record.classifications.append(item)
    return record


def _looks_like_number(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{2}[-_ ]?[A-Z]{0,2}\d[\d,]{3,14}[-_ ]?(?:[A-Z]\d?)?", value.strip().upper()))


def read_table(path: Path, data: bytes) -> dict[str, MetaRecord] | None:
    """Rows keyed by publication number, or None when this is not a metadata table."""
    text = data.decode("utf-8-sig", errors="replace")
    sample = text[:8192]
    delimiter = "\t" if sample.count("\t") >= sample.count(",") and "\t" in sample else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:
        return None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 1 or max(len(r) for r in rows) < 2:
        return None
    header = [_norm_key(c) for c in rows[0]]
    has_header = not any(_looks_like_number(c) for c in rows[0]) and any(k in _ID_KEYS for k in header)
    out: dict[str, MetaRecord] = {}
    if has_header:
        for row in rows[1:]:
            record = record_from_mapping(dict(zip(rows[0], row)))
            if record.publication:
                out[record.publication] = record
        return out if out else None
    # no header: the column of numbers, a class column if one looks like classes, the longest text as title
    numbered = [r for r in rows if r and _looks_like_number(r[0])]
    if len(numbered) < max(1, len(rows) * 0.8):
        return None
    for row in numbered:
        found = find_in_text(row[0].strip())
        if not found:
            continue
        record = MetaRecord(publication=found.publication_number)
        rest = [c.strip() for c in row[1:] if c.strip()]
        for cell in rest:
            if re.fullmatch(r"[A-Z]{1,2}\d{1,3}\s*[-/]\s*[\d.A-Z]+|\d{1,3}\s*/\s*[\d.]+", cell):
                item = _classification("USPC", cell)
                if item:
                    record.classifications.append(item)
            elif re.fullmatch(r"\d\d-\d\d", cell):
                record.classifications.append(Classification("Locarno", cell))
        prose = [c for c in rest if re.search(r"[a-z]{3}", c)]
        if prose:
            record.title = max(prose, key=len)
        out[record.publication] = record
    return out or None


#: a title that starts in lower case, or holds a bare number between its words ("adjusting audio parameters for a 12
#: user Head target for martial arts"): a fragment of a listing whose title and sheet-count columns ran together
_RUN_IN_TITLE = re.compile(r"^[a-z]|(?:^|\s)\d{1,3}(?=\s|$)")
#: a file whose titles are this share or more of run-in fragments (and at least RUN_IN_MIN of them) has its titles left
#: out: us-utility-sheets/all-patents.json is all of them (255 of 255), a clean listing none or one
RUN_IN_SHARE = 0.5
RUN_IN_MIN = 5


def drop_run_in_titles(records: dict[str, MetaRecord], source: str) -> int:
    """Leaves out every title of ``records`` when most of them are fragments of a listing whose columns ran together
    (``_RUN_IN_TITLE``): such a file pairs each patent with pieces of its neighbours' titles (stop 26:
    us-utility-sheets/all-patents.json titles US12108227B2, a hearing test, "adjusting audio parameters for a 12
    user Head target for martial arts", the sheet count 12 and the next entry's title run in). A title is then
    none rather than wrong; the abstracts, which are each patent's own, stay. Returns how many were left out."""
    titled = [r for r in records.values() if r.title]
    run_in = [r for r in titled if _RUN_IN_TITLE.search(r.title)]
    if len(run_in) < RUN_IN_MIN or len(run_in) < RUN_IN_SHARE * len(titled):
        return 0
    log.warning("%s: %d of %d titles look like a listing's title and sheet-count columns run together (e.g. %r): "
                "its titles are left out, its abstracts kept", source, len(run_in), len(titled), run_in[0].title)
    for record in titled:
        record.title = None
    return len(titled)


def read_json_metadata(data, source: str = "metadata JSON") -> dict[str, MetaRecord] | None:
    """Records of a metadata JSON (a list of patent objects, or an object keyed by numbers); titles left out where
    the file's titles are run-in fragments (``drop_run_in_titles``)."""
    records = _json_records(data)
    if records:
        drop_run_in_titles(records, source)
    return records


def _json_records(data) -> dict[str, MetaRecord] | None:
    candidates: list = []
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)]
        if lists and len(data) <= 5:
            candidates = [i for lst in lists for i in lst]
        elif data and sum(1 for k in data if _looks_like_number(str(k))) >= max(1, len(data) * 0.8):
            out: dict[str, MetaRecord] = {}
            for key, value in data.items():
                found = find_in_text(str(key))
                if not found:
                    continue
                record = record_from_mapping(value) if isinstance(value, dict) else MetaRecord()
                record.publication = found.publication_number
                out[record.publication] = record
            return out
    elif isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        candidates = data
    out = {}
    for item in candidates:
        record = record_from_mapping(item)
        if record.publication:
            out[record.publication] = record
    return out or None


def load_json(data: bytes, source: str):
    from figsearch.errors import CorruptInput

    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptInput(f"{source}: malformed JSON ({exc})") from None


def read_sidecar(path: Path) -> MetaRecord:
    """The known fields of a sidecar JSON or text file (an empty record for anything else)."""
    data = path.read_bytes()[:MAX_METADATA_BYTES]
    if path.suffix.lower() == ".json":
        parsed = load_json(data, str(path))
        if isinstance(parsed, dict):
            return record_from_mapping(parsed)
        log.debug("%s: sidecar JSON is not an object; no patent fields in it", path)
        return MetaRecord()
    text = data.decode("utf-8-sig", errors="replace")
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return MetaRecord(paragraphs=[p for p in paragraphs if p])
