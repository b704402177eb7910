"""Spotting and linking for a collection: OCR every drawing not yet done, then link it to its sentences.

``spot_and_link(collection)`` is what ``figsearch ocr`` (and ingest, after it) runs. It is
resumable: each figure is committed on its own with ``ocr_done_at`` set, and a rerun takes up the
figures whose ``ocr_done_at`` is still NULL. A patent whose description changed since its sentences
were built is relinked from the signs already stored, without OCR.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from figsearch.link import storage
from figsearch.link.glossary import brief_clause, brief_descriptions, glossary, label_keys, label_mentions
from figsearch.link.mentions import Mention, find_mentions
from figsearch.link.sentences import description_sentences
from figsearch.link.storage import Link
from figsearch.records import Figure, FigureRole, Patent, ReferenceSign, Section, Sentence
from figsearch.store import Collection
from figsearch.fsutil import sha256_bytes

log = logging.getLogger(__name__)

NUMBER = "number"  # a numeral read in a drawing that the description does not use as a sign


def cited(sign: str, vocabulary: set[str]) -> bool:
    """Whether the description uses ``sign`` as a reference sign.

    Exact on purpose: a drawing's ``504a`` that the text never names is not one of its signs
    (the text's ``504`` still links to sentences about 504 through the numeral ``504``).
    """
    return sign in vocabulary


@dataclass
class PatentText:
    """What linking needs from one patent's description, computed once per patent."""

    sentences: list[Sentence]
    mentions: list[list[Mention]]
    vocabulary: set[str]
    brief: dict[str, int]  # figure number -> brief-description sentence index
    label_refs: dict[str, list[int]]  # figure number -> sentences that refer to it
    text_sha256: str

    @classmethod
    def of(cls, patent: Patent) -> PatentText:
        description = [p for p in patent.paragraphs if p.section == Section.DESCRIPTION]
        digest = _digest([(p.number, p.text) for p in description])
        sentences = description_sentences(patent.publication_number, description)
        mentions = [find_mentions(s.text) for s in sentences]
        vocabulary = {m.sign for ms in mentions for m in ms if m.last is None}
        return cls(sentences, mentions, vocabulary, brief_descriptions(sentences), label_mentions(sentences), digest)

    def classify(self, signs: list[ReferenceSign]) -> list[ReferenceSign]:
        """Numerals the description does not use become kind ``number`` (axis ticks, table values)."""
        if not self.vocabulary:
            return signs  # nothing to check against: keep what was read
        return [
            ReferenceSign(s.text, NUMBER, s.box, s.confidence)
            if s.kind == "numeral" and not cited(s.text, self.vocabulary) else s
            for s in signs
        ]

    def links(self, label: str | None, signs: list[ReferenceSign]) -> list[Link]:
        numerals = sorted({s.text for s in signs if s.kind == "numeral"})
        labels = set(label_keys(label))
        for s in signs:
            if s.kind == "figure_label":
                labels.update(label_keys(s.text))
        out: list[Link] = []
        for key in sorted(labels):
            if key in self.brief:
                out.append(Link(self.brief[key], "brief_description"))
            out += [Link(i, "label") for i in self.label_refs.get(key, []) if i != self.brief.get(key)]
        for sentence, mentions in zip(self.sentences, self.mentions):
            for sign in numerals:
                if any(m.covers(sign) for m in mentions):
                    out.append(Link(sentence.index, "sign", sign))
        return out


def _digest(paragraphs: list[tuple]) -> str:
    return sha256_bytes(json.dumps([list(p) for p in paragraphs]).encode())


def _text_digest(collection: Collection, patent: str) -> str:
    rows = collection.db.execute(
        "SELECT number, text FROM paragraphs WHERE publication_number=? AND section=? ORDER BY seq",
        (patent, Section.DESCRIPTION.value),
    ).fetchall()
    return _digest([(r[0], r[1]) for r in rows])


@dataclass
class SpotLinkReport:
    figures: int = 0  # figures read
    signs: int = 0  # reference numerals kept
    links: int = 0  # (figure, sentence) links written
    split_sheets: int = 0
    new_figures: int = 0  # figures cut from split sheets
    relinked_patents: int = 0
    notes: dict[str, list[str]] = field(default_factory=dict)


def _ensure_text(collection: Collection, patent_number: str, cache: dict, report: SpotLinkReport) -> PatentText:
    if patent_number in cache:
        return cache[patent_number]
    text = PatentText.of(collection.patent(patent_number))
    cache[patent_number] = text
    if storage.stored_text_sha(collection.db, patent_number) != text.text_sha256:
        with collection.transaction() as db:
            storage.write_patent_text(db, patent_number, text.sentences,
                                      glossary(patent_number, text.sentences), text.text_sha256)
            done = db.execute(
                "SELECT figure_id, label FROM figures WHERE publication_number=? AND ocr_done_at IS NOT NULL",
                (patent_number,),
            ).fetchall()
            for row in done:  # the text changed under figures already read: relink them from their signs
                signs = text.classify(_as_numerals(storage.signs_of(collection, row["figure_id"])))
                storage.write_signs(db, row["figure_id"], signs, _engine_of(db, row["figure_id"]))
                storage.write_links(db, row["figure_id"], patent_number, text.links(row["label"], signs))
        if done:
            report.relinked_patents += 1
    return text


def _as_numerals(signs: list[ReferenceSign]) -> list[ReferenceSign]:
    return [ReferenceSign(s.text, "numeral", s.box, s.confidence) if s.kind == NUMBER else s for s in signs]


def _engine_of(db, figure_id: str) -> str:
    row = db.execute("SELECT engine FROM reference_signs WHERE figure_id=? LIMIT 1", (figure_id,)).fetchone()
    return row[0] if row and row[0] else ""


def _load(collection: Collection, figure: Figure) -> Image.Image:
    if not figure.image_path:
        raise OSError("no stored image")
    path = collection.path(figure.image_path)
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _child_figures(collection: Collection, sheet: Figure, image: Image.Image, parts, signs, text: PatentText):
    """Store the figures cut from ``sheet``; returns (figure, its signs in its own pixels) pairs."""
    from figsearch.ocr.split import inside

    sheet_key = sheet.figure_id.removeprefix(f"{sheet.patent}-")
    out = []
    for label, box in parts:
        key = "".join(label_keys(label)).lower() or "x"
        crop = image.crop(box)
        image_path, sha = collection.save_png("images", sheet.patent, f"{sheet_key}-fig{key}", crop)
        thumb = crop.copy()
        thumb.thumbnail((256, 256))
        thumb_path, _ = collection.save_png("thumbs", sheet.patent, f"{sheet_key}-fig{key}", thumb)
        brief = text.brief.get(label_keys(label)[0]) if label_keys(label) else None
        child = Figure(
            figure_id=f"{sheet.figure_id}-fig{key}", patent=sheet.patent, label=label, role=FigureRole.DRAWING,
            source_file=sheet.source_file, page=sheet.page,
            description=brief_clause(text.sentences[brief].text, label_keys(label)[0]) if brief is not None else None,
            sequence=sheet.sequence, image_path=image_path, thumbnail_path=thumb_path,
            width=crop.width, height=crop.height, image_sha256=sha, parent_id=sheet.figure_id, box=box,
        )
        own = [
            ReferenceSign(s.text, s.kind, (s.box[0] - box[0], s.box[1] - box[1], s.box[2] - box[0], s.box[3] - box[1]),
                          s.confidence)
            for s in signs if s.box and inside(s.box, box)
        ]
        out.append((child, own))
    return out


def _insert_child(db, child: Figure) -> None:
    db.execute(
        """INSERT OR REPLACE INTO figures (figure_id, publication_number, label, role, sequence, source_file, page,
               description, image_path, thumbnail_path, width, height, image_sha256, parent_id, box_json, ocr_done_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)""",
        (child.figure_id, child.patent, child.label, child.role.value, child.sequence, child.source_file, child.page,
         child.description, child.image_path, child.thumbnail_path, child.width, child.height, child.image_sha256,
         child.parent_id, json.dumps(child.box)),
    )


def process_figure(
    collection: Collection, figure: Figure, engine, text: PatentText, report: SpotLinkReport, boxes=None
) -> None:
    """Read one figure, split it if it holds several labelled figures, link it; one transaction.

    ``boxes``: the figure's text already read by a worker (``_read_in_worker``), so only the
    writing happens here.
    """
    from figsearch.ocr import parse_signs
    from figsearch.ocr.split import split_sheet

    notes: list[str] = []
    signs: list[ReferenceSign] = []
    image = None
    if figure.role != FigureRole.DRAWING:
        notes.append(f"not read: a {figure.role.value.replace('_', ' ')} image")
    else:
        try:
            image = _load(collection, figure)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
            notes.append(f"image unreadable ({figure.image_path}): {exc}")
            log.warning("figure %s: image unreadable: %s", figure.figure_id, exc)
    if image is not None:
        signs = text.classify(parse_signs(boxes if boxes is not None else engine.read(image)))
        if not signs:
            notes.append("no reference signs or labels found in the drawing")
    if not text.sentences:
        notes.append("patent has no description: no sentences to link")
    labels = list(dict.fromkeys(s.text for s in signs if s.kind == "figure_label"))
    parts = split_sheet(image, signs) if image is not None and len(labels) >= 2 else []
    children = _child_figures(collection, figure, image, parts, signs, text) if parts else []
    label, description, role = figure.label, figure.description, figure.role
    if len(labels) == 1 and not label:
        label = labels[0]
    if label and not description:
        keys = label_keys(label)
        if len(keys) == 1 and keys[0] in text.brief:
            description = brief_clause(text.sentences[text.brief[keys[0]]].text, keys[0])
    if children:
        role = FigureRole.SPLIT_SHEET
        if not label:
            keys = sorted((k for lab in labels for k in label_keys(lab)), key=lambda k: (len(k), k))
            label = "FIGS. " + ", ".join(keys)
    links = text.links(label, signs)
    with collection.transaction() as db:
        db.execute("DELETE FROM figures WHERE parent_id=?", (figure.figure_id,))
        db.execute("UPDATE figures SET label=?, description=?, role=? WHERE figure_id=?",
                   (label, description, role.value, figure.figure_id))
        storage.write_signs(db, figure.figure_id, signs, engine.name if engine else "")
        storage.write_links(db, figure.figure_id, figure.patent, links)
        storage.write_notes(db, figure.figure_id, notes)
        storage.mark_done(db, figure.figure_id)
        for child, own in children:
            _insert_child(db, child)
            child_links = text.links(child.label, own)
            storage.write_signs(db, child.figure_id, own, engine.name)
            storage.write_links(db, child.figure_id, child.patent, child_links)
            storage.write_notes(db, child.figure_id, [f"cut from sheet {figure.figure_id} by its labels"])
            storage.mark_done(db, child.figure_id)
            report.links += len(child_links)
    report.figures += 1
    report.signs += sum(s.kind == "numeral" for s in signs)
    report.links += len(links)
    if children:
        report.split_sheets += 1
        report.new_figures += len(children)
    if notes:
        report.notes[figure.figure_id] = notes


def pending(collection: Collection) -> list[Figure]:
    ids = [r[0] for r in collection.db.execute(
        "SELECT figure_id FROM figures WHERE ocr_done_at IS NULL AND parent_id IS NULL "
        "ORDER BY publication_number, sequence, figure_id"
    )]
    return [collection.figure(i) for i in ids]


def reset(collection: Collection, patent: str | None = None) -> None:
    """Forget OCR results (cut figures included) so that the next run reads everything again."""
    clause, args = ("publication_number=?", (patent,)) if patent else ("1=1", ())
    with collection.transaction() as db:
        # only OCR cuts figures from sheets, so every figure with a parent is ours to remove
        db.execute(f"DELETE FROM figures WHERE {clause} AND parent_id IS NOT NULL", args)
        db.execute(f"UPDATE figures SET role='drawing' WHERE {clause} AND role='split_sheet'", args)
        db.execute(f"UPDATE figures SET ocr_done_at=NULL WHERE {clause}", args)
        db.execute(f"DELETE FROM link_state WHERE {clause}", args)


def spot_and_link(
    collection: Collection,
    engine: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    redo: bool = False,
    jobs: int | None = None,
) -> SpotLinkReport:
    """Read and link every figure whose ``ocr_done_at`` is NULL (all of them with ``redo``).

    ``jobs`` worker processes read the drawings (default: the CPUs, at most 4); this process
    alone writes, one transaction per figure, so an interrupted run keeps what it finished.
    """
    from figsearch.ocr import OCR_ENGINES, create_engine

    if engine is not None and engine not in OCR_ENGINES:
        OCR_ENGINES.create(engine)  # raises the error that lists the valid names
    if redo:
        reset(collection)
    report = SpotLinkReport()
    todo = pending(collection)
    texts: dict[str, PatentText] = {}
    for number in collection.patent_numbers():  # text changes are relinked even when no figure is pending
        if storage.stored_text_sha(collection.db, number) != _text_digest(collection, number):
            _ensure_text(collection, number, texts, report)
    drawings = [f for f in todo if f.role == FigureRole.DRAWING]
    ocr = create_engine(engine) if drawings else None
    jobs = min(jobs or default_jobs(), max(len(drawings) // _MIN_PER_WORKER, 1))
    with _ReadAhead(collection, drawings, ocr, jobs) as read_ahead:
        for done, figure in enumerate(todo, 1):
            text = _ensure_text(collection, figure.patent, texts, report)
            process_figure(collection, figure, ocr, text, report, read_ahead.boxes(figure))
            if progress:
                progress(done, len(todo))
    return report


#: below this many drawings per worker, starting workers costs more than it saves
_MIN_PER_WORKER = 8


def default_jobs() -> int:
    """OCR worker processes: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


_worker_engine = None


def _start_worker(engine_name: str) -> None:
    global _worker_engine
    from figsearch.ocr import create_engine

    _worker_engine = create_engine(engine_name)


def _read_in_worker(path: str):
    """The text boxes of one stored drawing, or None when it cannot be read (the parent says why)."""
    try:
        with Image.open(path) as image:
            image.load()
            return _worker_engine.read(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None


class _ReadAhead:
    """Reads drawings in worker processes ahead of the parent, which alone writes the collection.

    With one job nothing is read ahead and the parent reads each figure itself. Results come back
    in order, so the parent's writes (and the collection) are the same as a sequential run's.
    """

    def __init__(self, collection: Collection, drawings: list[Figure], engine, jobs: int) -> None:
        self.results = None
        self.pool = None
        if jobs <= 1 or engine is None:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        paths = [str(collection.path(f.image_path)) if f.image_path else "" for f in drawings]
        self.ids = iter([f.figure_id for f in drawings])
        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        self.pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                        initargs=(engine.name,))
        self.results = self.pool.map(_read_in_worker, paths, chunksize=2)

    def boxes(self, figure: Figure):
        if self.results is None or figure.role != FigureRole.DRAWING:
            return None
        expected = next(self.ids)
        assert expected == figure.figure_id, (expected, figure.figure_id)
        return next(self.results)

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
