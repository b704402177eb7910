"""A tiny synthetic collection and a small search backend over it, for the server's tests.

Four patents, each with three drawing sheets of its own shape family (circles, grids,
triangles, stripes) and numerals drawn at known places, so that visual search finds a
sheet's siblings first and the reference-sign boxes are known exactly. The backend follows
``figsearch.search.api.SearchBackend``: visual similarity is the cosine of 24x24 pixel
vectors, text similarity a word overlap; both simple enough to work out by hand.
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from figsearch.embed.preprocess import prepare_drawing
from figsearch.errors import EmptyCollection, InputError, NotFound
from figsearch.records import Classification, Figure, FigureRole, GlossaryEntry, Hit, Patent, ReferenceSign
from figsearch.search.api import FigureDetails, LinkedSentence, PatentDetails, SearchResult
from figsearch.search.query import MODES, Query
from figsearch.store import Collection

SHEET = (400, 560)

PATENTS = {
    "USD0900001S": dict(office="US", number="D0900001", kind="S", title="Wheel rim", date="2021-03-02",
                        cls=("Locarno", "12-16"), shape="circles",
                        signs={"10": "rim", "12": "spoke"}),
    "USD0900002S": dict(office="US", number="D0900002", kind="S", title="Storage cabinet", date="2021-06-15",
                        cls=("Locarno", "06-04"), shape="grid",
                        signs={"20": "door", "22": "handle"}),
    "EP1000003A1": dict(office="EP", number="1000003", kind="A1", title="Mounting bracket", date="2019-11-20",
                        cls=("IPC", "F16M 13/02"), shape="triangles",
                        signs={"30": "bracket", "32": "bolt hole"}),
    "US20250000004A1": dict(office="US", number="20250000004", kind="A1", title="Coil spring assembly",
                            date="2025-01-09", cls=("CPC", "F16F 1/04"), shape="stripes",
                            signs={"40": "coil", "42": "end cap"}),
}


def draw_sheet(shape: str, variant: int, signs: list[str], label: str) -> tuple[Image.Image, list[ReferenceSign]]:
    """A drawing sheet of one shape family; returns the image and where its numerals were drawn."""
    image = Image.new("L", SHEET, 255)
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=22)
    # siblings differ a little (position, one detail), families a lot (shape)
    cx, cy = 196 + 4 * variant, 250
    s = 120
    pen.rectangle((60 + 90 * variant, 410, 76 + 90 * variant, 426), fill=0)
    if shape == "circles":
        for r in range(30, s + 1, 26):
            pen.ellipse((cx - r, cy - r, cx + r, cy + r), outline=0, width=5)
        pen.ellipse((cx - 14, cy - 14, cx + 14, cy + 14), fill=0)
    elif shape == "grid":
        pen.rectangle((cx - s, cy - s, cx + s, cy + s), outline=0, width=6)
        for i in range(1, 4):
            x = cx - s + i * s // 2
            pen.line((x, cy - s, x, cy + s), fill=0, width=5)
            y = cy - s + i * s // 2
            pen.line((cx - s, y, cx + s, y), fill=0, width=5)
        pen.rectangle((cx - s // 2, cy - s // 2, cx + s // 2, cy + s // 2), fill=0)
    elif shape == "triangles":
        for d in range(0, 3):
            off = d * 28
            pen.polygon([(cx, cy - s + off), (cx - s + off, cy + s - off), (cx + s - off, cy + s - off)], outline=0, width=5)
    elif shape == "stripes":
        for i in range(-4, 5):
            y = cy + i * (s // 5)
            pen.line((cx - s, y, cx + s, y + 18), fill=0, width=7)
    boxes = []
    spots = [(40, 60), (320, 430)]
    for text, (x, y) in zip(signs, spots):
        pen.text((x, y), text, fill=0, font=font)
        x0, y0, x1, y1 = pen.textbbox((x, y), text, font=font)
        boxes.append(ReferenceSign(text=text, kind="numeral", box=(x0, y0, x1, y1), confidence=0.9))
    pen.text((160, 500), label, fill=0, font=font)
    boxes.append(ReferenceSign(text=label, kind="figure_label", box=pen.textbbox((160, 500), label, font=font)))
    return image, boxes


def build_collection(root: Path, sheets_per_patent: int = 3) -> Path:
    """Writes the synthetic collection (store rows and PNG files) and returns its directory."""
    with Collection.open(root, create=True) as collection:
        for pub, spec in PATENTS.items():
            signs = list(spec["signs"])
            sentences = [f"{spec['title']} according to the design, shown in the drawings."]
            for sign, term in spec["signs"].items():
                sentences.append(f"The {term} {sign} is part of the {spec['title'].lower()}.")
            patent = Patent(
                publication_number=pub, office=spec["office"], number=spec["number"], kind=spec["kind"],
                title=spec["title"], publication_date=spec["date"], abstract=f"A {spec['title'].lower()}.",
                classifications=[Classification(*spec["cls"])], claims=["The ornamental design as shown."],
                source_format="synthetic",
            )
            figures, sign_rows = [], []
            for n in range(1, sheets_per_patent + 1):
                label = f"FIG. {n}"
                image, boxes = draw_sheet(spec["shape"], n, signs, label)
                image_path, sha = collection.save_png("images", pub, f"D{n:05d}", image)
                thumb = image.copy()
                thumb.thumbnail((200, 200))
                thumb_path, _ = collection.save_png("thumbs", pub, f"D{n:05d}", thumb)
                fid = f"{pub}-D{n:05d}"
                figures.append(Figure(
                    figure_id=fid, patent=pub, label=label, sequence=n, image_path=image_path,
                    thumbnail_path=thumb_path, width=image.width, height=image.height, image_sha256=sha,
                    description=f"{label} is a view of the {spec['title'].lower()}.",
                ))
                sign_rows.append((fid, boxes))
            collection.upsert_patent(patent, figures)
            with collection.transaction() as db:
                for i, text in enumerate(sentences):
                    db.execute("INSERT OR REPLACE INTO sentences VALUES (?,?,?,?)", (pub, i, f"[000{i}]", text))
                for i, (sign, term) in enumerate(spec["signs"].items(), start=1):
                    db.execute("INSERT OR REPLACE INTO glossary VALUES (?,?,?,?)", (pub, sign, term, i))
                for fid, boxes in sign_rows:
                    db.execute("DELETE FROM reference_signs WHERE figure_id=?", (fid,))
                    for b in boxes:
                        db.execute("INSERT INTO reference_signs VALUES (?,?,?,?,?,?,?,?,?)",
                                   (fid, b.text, b.kind, *b.box, b.confidence, "synthetic"))
                    for i, sign in enumerate(spec["signs"], start=1):
                        db.execute("INSERT OR REPLACE INTO figure_sentences VALUES (?,?,?,?,?)",
                                   (fid, pub, i, "sign", sign))
    return root


def _visual_vector(image: Image.Image) -> np.ndarray:
    pixels = 255.0 - np.asarray(prepare_drawing(image, 24), dtype=np.float32).ravel()
    pixels -= pixels.mean()
    return pixels / (np.linalg.norm(pixels) or 1.0)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{3,}", text.lower()))


class FakeBackend:
    """A SearchBackend over a collection, computed exactly; records its calls for the tests.

    Safe to call from several threads at once, as the server does: one read-only store
    connection per thread, everything else read-only after construction.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._local = threading.local()
        self.calls: list[Query] = []
        self.closed = False
        self.fail_with: Exception | None = None
        db = self.collection.db
        self.figures = {f.figure_id: f for f in self.collection.figures(roles=(FigureRole.DRAWING,))}
        self.vectors = {
            fid: _visual_vector(Image.open(self.collection.path(f.image_path))) for fid, f in self.figures.items()
        }
        self.texts = {}
        for fid, f in self.figures.items():
            rows = db.execute(
                "SELECT s.text FROM figure_sentences fs JOIN sentences s ON s.publication_number=fs.publication_number"
                " AND s.idx=fs.sentence_idx WHERE fs.figure_id=?", (fid,)).fetchall()
            self.texts[fid] = _words(" ".join(r[0] for r in rows) + " " + (f.description or ""))
        self.patents = {p: self.collection.patent(p) for p in self.collection.patent_numbers()}

    @property
    def collection(self) -> Collection:
        collection = getattr(self._local, "collection", None)
        if collection is None:
            collection = self._local.collection = Collection.open(self.root)
        return collection

    def search(self, query: Query) -> SearchResult:
        self.calls.append(query)
        if self.fail_with:
            raise self.fail_with
        start = time.perf_counter()
        if query.mode not in MODES:
            raise InputError(f"unknown mode {query.mode!r}; expected one of {', '.join(MODES)}")
        qvec = None
        if query.figure_id is not None:
            if query.figure_id not in self.figures:
                raise NotFound(f"unknown figure id {query.figure_id!r}")
            qvec = self.vectors[query.figure_id]
        if query.image is not None:
            image = query.image if isinstance(query.image, Image.Image) else Image.open(io.BytesIO(query.image))
            qvec = _visual_vector(image)
        qwords = _words(query.text or "")
        if query.mode == "visual" and qvec is None:
            raise InputError("mode 'visual' needs an image or a figure_id")
        if query.mode == "text" and not qwords and query.figure_id is None:
            raise InputError("mode 'text' needs a text or a figure_id")
        if query.figure_id is not None and not qwords:
            qwords = self.texts[query.figure_id]
        if not self.figures:
            raise EmptyCollection("nothing indexed")
        exclude = set(query.filters.exclude_patents)
        if query.exclude_query_patent and query.figure_id:
            exclude.add(self.figures[query.figure_id].patent)
        scored = []
        for fid, fig in self.figures.items():
            patent = self.patents[fig.patent]
            if not self._passes(patent, query, exclude):
                continue
            scores = {}
            if qvec is not None and query.mode != "text":
                scores["visual"] = float(self.vectors[fid] @ qvec)
            if qwords and query.mode != "visual":
                scores["text"] = len(qwords & self.texts[fid]) / len(qwords | self.texts[fid])
            scored.append((fid, scores))
        fused = self._fuse(scored, query)
        fused.sort(key=lambda item: (-item[1], item[0]))
        page = fused[query.offset: query.offset + query.k]
        hits = []
        for rank, (fid, score, scores) in enumerate(page, start=query.offset + 1):
            fig = self.figures[fid]
            hits.append(Hit(figure_id=fid, patent=fig.patent, score=score, rank=rank, label=fig.label,
                            scores=scores, title=self.patents[fig.patent].title,
                            sentences=sorted(self.texts[fid])[:2], reference_signs=[]))
        return SearchResult(hits=hits, total=len(fused), mode=query.mode, modalities=sorted({m for _, s in scored for m in s}),
                            took_ms=(time.perf_counter() - start) * 1000)

    @staticmethod
    def _passes(patent: Patent, query: Query, exclude: set[str]) -> bool:
        f = query.filters
        if patent.publication_number in exclude:
            return False
        if f.office and patent.office != f.office:
            return False
        if f.date_from and (patent.publication_date or "") < f.date_from:
            return False
        if f.date_to and (patent.publication_date or "9999") > f.date_to:
            return False
        if f.classification_prefix and not any(c.code.startswith(f.classification_prefix) for c in patent.classifications):
            return False
        return True

    @staticmethod
    def _fuse(scored, query: Query):
        out = []
        ranks = {}
        for modality in ("visual", "text"):
            order = sorted((fid for fid, s in scored if modality in s), key=lambda fid: -dict(scored)[fid][modality])
            ranks[modality] = {fid: i + 1 for i, fid in enumerate(order)}
        for fid, s in scored:
            v, t = s.get("visual", 0.0), s.get("text", 0.0)
            if query.text_weight is not None:
                score = (1 - query.text_weight) * v + query.text_weight * t
            elif query.mode == "max":
                score = max(s.values(), default=0.0)
            elif query.mode == "rrf":
                score = sum(1 / (60 + ranks[m][fid]) for m in s)
            else:
                score = sum(s.values()) / max(len(s), 1)
            out.append((fid, score, s))
        return out

    def resolve_figure(self, reference: str) -> str:
        """As SearchService.resolve_figure: an id, or a readable reference ("EP1000003A1 FIG. 2")."""
        from figsearch.search.explain import resolve_figure

        return resolve_figure(self.collection, reference).figure_id

    def figure_details(self, figure_id: str) -> FigureDetails:
        figure = self.collection.figure(figure_id)
        db = self.collection.db
        signs = [ReferenceSign(r["text"], r["kind"], (r["x0"], r["y0"], r["x1"], r["y1"]), r["confidence"])
                 for r in db.execute("SELECT * FROM reference_signs WHERE figure_id=?", (figure_id,))]
        sentences = [LinkedSentence(r["idx"], r["text"], r["reason"], [r["sign"]]) for r in db.execute(
            "SELECT s.idx, s.text, fs.reason, fs.sign FROM figure_sentences fs JOIN sentences s"
            " ON s.publication_number=fs.publication_number AND s.idx=fs.sentence_idx WHERE fs.figure_id=?"
            " ORDER BY s.idx", (figure_id,))]
        return FigureDetails(figure=figure, patent_title=self.collection.patent(figure.patent).title,
                             reference_signs=signs, sentences=sentences, glossary=self._glossary(figure.patent))

    def _glossary(self, pub: str) -> list[GlossaryEntry]:
        return [GlossaryEntry(pub, r["sign"], r["term"], r["sentence_idx"]) for r in self.collection.db.execute(
            "SELECT * FROM glossary WHERE publication_number=? ORDER BY sign", (pub,))]

    def patent_details(self, publication_number: str) -> PatentDetails:
        patent = self.collection.patent(publication_number)
        return PatentDetails(patent=patent, figures=self.collection.figures(patent=publication_number),
                             glossary=self._glossary(publication_number))

    def info(self) -> dict:
        return {**self.collection.counts(), "encoders": {"visual": "fake-pixels-24", "text": "fake-words"}}

    def close(self) -> None:
        self.closed = True


def make_client(root: Path, backend=None, **app_options):
    """A TestClient over the real app; server errors come back as responses, as a browser sees them."""
    from fastapi.testclient import TestClient

    from figsearch.server.app import create_app

    backend = backend or FakeBackend(root)
    app = create_app(backend, root, **app_options)
    return TestClient(app, raise_server_exceptions=False), backend


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The one error shape: {"error": {"code", "message", "status"[, "details"]}} and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "status", "details"} and {"code", "message", "status"} <= set(error), error
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["code"], str) and error["code"], error
    if code is not None:
        assert error["code"] == code, error
    return error
