"""The one search service that the CLI, the HTTP API, the web page and the evaluation call.

Query → per-modality nearest neighbours (FAISS, filtered) → fusion (figsearch.search.fusion)
→ hits with their explanations. Query vectors come from the stored vectors (search by figure)
or from the encoders the collection was indexed with (image, text), never from others.

The read path: a search only reads. It answers from the snapshot of indexes that the last
``figsearch index`` (or build) wrote and never builds, trains, calibrates or writes one; when
vectors were stored since that run, the result's notes say how many figures it cannot find yet.
A new snapshot is picked up whole on the next search. One service may be called from several
threads at once: each thread reads the collection through its own read-only connection, a
snapshot is never changed once opened, and each encoder runs one call at a time (but for the
``thread_safe`` encoding of an upload's turns, ``_encode_turns``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from figsearch.embed.base import l2_normalise
from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_text, create_visual, encoder_key, parse_spec
from figsearch.errors import CollectionError, EmptyCollection, FigsearchError, InputError, ModelUnavailable
from figsearch.index.files import index_dir, read_manifest
from figsearch.index.settings import encoder_settings
from figsearch.index.snapshot import Freshness, IndexSnapshot, manifest_token
from figsearch.link.text import words_text
from figsearch.records import FigureRole, Hit
from figsearch.search import explain, lexical, neighbour_text, rerank
from figsearch.search.api import FigureDetails, PatentDetails, SearchResult
from figsearch.search.filters import check_filters, passing
from figsearch.search import fusion
from figsearch.search.fusion import Fused, fuse
from figsearch.search.inputs import load_query_image, load_query_page, page_note
from figsearch.search.query import MODES, NEIGHBOUR_TEXT_MODES, Query, neighbour_text_by_default, rerank_by_default
from figsearch.search.words import DrawingReader
from figsearch.store import MODALITIES, Collection

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_OFFSET = 10_000
#: each modality's candidate list holds this many times the hits asked for (at least MIN_LIST)
LIST_FACTOR = 4
MIN_LIST = 100
#: the orientations an uploaded drawing can be matched in (its best one counts): a sheet scanned or
#: photographed turned a quarter turn. Searched with all of them only when the query asks
#: (``Query.all_turns``) or the upright match is below ``upright_confident`` (below).
QUERY_ROTATIONS = (0, 90, 180, 270)
#: an uploaded drawing is encoded upright first; its other orientations are encoded (and searched with)
#: only when the upright drawing's best match in the visual index scores below this cosine. -1.0, the
#: default since stop 21: never (no cosine is lower), so the upright drawing alone is searched unless the
#: query asks for every turn. Measured on the training side (benchmarks/upload_turns.py, docs/serving.md
#: "Stop 21"): a drawing in the orientation it was published in, new to the collection, found its
#: patent's other sheets as well or better upright alone (design PDFs, AP@10 0.916 -> 0.927) and drawings
#: of its class better (2007 designs whose patent the collection lacks, AP@10 0.058 -> 0.072): the other
#: turns add chance matches; only a drawing turned against its publication needs them (all_turns). At a
#: third of the CPU. 0.9 is stop 17's rule (every turn unless the drawing nearly is one of the
#: collection's); ``SearchService(upright_confident=None)`` encodes every orientation always.
UPRIGHT_CONFIDENT = -1.0
#: an uploaded drawing whose best match in the visual index scores at least this cosine IS that drawing of the
#: collection (a sheet of a patent the examiner holds): ``exclude_query_patent`` leaves its patent out. Chosen on
#: the training side alone (benchmarks/near_copy_threshold.py, docs/serving.md "Stop 26"): the source files of
#: even-numbered 2007 designs and design PDFs, uploaded, found themselves at cosine 1.000 (173 of 173 drawings
#: stored whole; split sheets: below); the best match of a drawing of another patent among those 1,346 drawings
#: scored at most 0.921. A photo-like copy (grey paper, turned, soft, JPEG) scores 0.42-0.9 and is not taken.
NEAR_COPY = 0.95
#: how many of the upload's best matches are compared pixel for pixel with their stored images (and with the
#: sheet a matched figure was cut from): a whole sheet uploaded whose figures the collection holds cut apart
#: scores only 0.5-0.9 against each of them, yet its pixels are the stored sheet's
NEAR_COPY_PIXELS = 10
#: how long a modality's freshness (stored vectors vs the index) is trusted before it is counted again
STATE_CHECK_SECONDS = 2.0
#: uploaded drawings whose encodings are kept (the page sends the same file again for the next page,
#: another mode or other filters): their orientations' vectors and the words read in them
QUERY_CACHE_SIZE = 32

#: visual encoders whose factory takes ``threads`` (their intra-op threads: onnxruntime's, torch's)
THREADED_VISUAL = frozenset({"backbone", "drawing"})
#: text encoders that take a thread count (minilm runs through onnxruntime, whose idle threads spin)
THREADED_TEXT = frozenset({"minilm"})

#: reads an upload's words while its orientations are encoded: the two do not depend on each other,
#: and the OCR engine (tesserocr) releases the GIL while it recognises, so they overlap on two cores
_WORDS_POOL = ThreadPoolExecutor(2, thread_name_prefix="figsearch-words")

#: an uploaded drawing's words search the text channel only when one of them has at least this many letters
UPLOAD_WORD_LETTERS = 3


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


class _QueryCache:
    """A small LRU of what an uploaded drawing costs to encode, keyed by its pixels (not its file:
    the same drawing as PNG or TIFF is one entry) and by what encoded it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(image, *parts) -> tuple:
        # SHA-256, which most x86 and ARM CPUs compute with instructions of their own: on a
        # 3-megapixel drawing 2.2 ms of CPU against blake2b's 4.6 ms (measured on the 2-core
        # machine), paid by every upload
        digest = hashlib.sha256(image.tobytes()).hexdigest()[:32]
        return (image.mode, image.size, digest, *parts)

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _same_pixels(path: Path, pixels: np.ndarray) -> bool:
    """Whether the stored drawing at ``path`` has exactly ``pixels`` (a grey image's array)."""
    from figsearch.imaging import load_stored

    try:
        stored = load_stored(path)  # a bilevel drawing's 1-bit file as its "L" pixels, as every reader sees it
        if stored.mode != "L":
            stored = stored.convert("L")
        return np.array_equal(np.asarray(stored), pixels)
    except OSError as error:  # a stored file gone or damaged: not a match, the search goes on
        log.warning("stored drawing %s cannot be read: %s", path, error)
        return False


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class SearchService:
    def __init__(self, collection: Collection, *, owns: bool = False, query_rotations=QUERY_ROTATIONS,
                 reader: DrawingReader | None = None, query_cache: int = QUERY_CACHE_SIZE,
                 upright_confident: float | None = UPRIGHT_CONFIDENT) -> None:
        self.collection = collection
        #: reads the words printed in an uploaded drawing (its text, when the mode uses text)
        self.reader = reader or DrawingReader()
        self.query_rotations = tuple(query_rotations) or (0,)
        #: the upright match's score from which an upload's other orientations are not encoded (-1: never
        #: encoded unless the query asks; None: always)
        self.upright_confident = upright_confident
        self._owns = owns
        #: guards the swap of the snapshot and the caches below (never held while searching)
        self._lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        #: guards the encoder cache (loading a model takes seconds: not under ``_lock``)
        self._encoder_lock = threading.Lock()
        self._encoders: dict = {}
        self._encode_locks: dict[str, threading.Lock] = {m: threading.Lock() for m in MODALITIES}
        #: (snapshot token, the known languages of the drawings with a lexical row): lexical.on_by_default
        self._lexical_languages: tuple[str, list[str]] | None = None
        #: modality -> (snapshot token, encoder key, checked at, Freshness)
        self._freshness: dict[str, tuple] = {}
        #: uploaded drawings' orientation vectors and words, by pixels and encoder
        self._query_cache = _QueryCache(query_cache)
        #: threads one encoder call may compute with (None: each library's default); see limit_threads
        self.compute_threads: int | None = None

    @classmethod
    def open(cls, root: str | Path) -> SearchService:
        return cls(Collection.open(root), owns=True)

    def close(self) -> None:
        if self._owns:
            self.collection.close()

    def limit_threads(self, threads: int | None) -> None:
        """Each encoder call computes on at most ``threads`` threads (onnxruntime's and torch's
        intra-op threads; None: their defaults, as many as the machine's cores). A server that runs
        several calls at once, in several processes, passes 1: its concurrency comes from the calls,
        and an encoder that spreads one call over every core makes the calls fight for them
        (onnxruntime's threads spin while they wait for work: a visual upload used twice the CPU on
        two threads that it used on one). Call it before the encoders are loaded (``warm``):
        onnxruntime fixes its threads when a model is opened. torch's setting is the process's.

        numpy's BLAS (OpenBLAS) is limited too, process-wide, through threadpoolctl where it is
        installed: the visual mode's re-ranking multiplies candidate matrices, and OpenBLAS's own
        threads spin while they wait, which in the load test of stop 20 took 6-19 CPU s in 30 s
        from the searches of both workers (docs/serving.md)."""
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, not {threads}")
        self.compute_threads = threads
        self._limit_torch_threads()
        if threads is not None:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                log.info("threadpoolctl is not installed: numpy's BLAS keeps its own thread count")
            else:
                threadpool_limits(threads, user_api="blas")

    def _limit_torch_threads(self) -> None:
        torch = sys.modules.get("torch")  # only when an encoder brought it in: never imported for this
        if self.compute_threads and torch is not None and torch.get_num_threads() != self.compute_threads:
            torch.set_num_threads(self.compute_threads)

    def __enter__(self) -> SearchService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what the collection was indexed with -------------------------------------------------

    def _settings(self, modality: str) -> dict | None:
        return encoder_settings(self.collection, modality)

    def _visual_name(self, indexes) -> str | None:
        """The visual encoder's name (``drawing``, ``backbone``, ...) when the visual index takes part."""
        if "visual" not in indexes:
            return None
        settings = self._settings("visual") or {}
        return (settings.get("identity") or {}).get("name") or settings.get("spec")

    def _visual_model(self, indexes) -> tuple[str | None, str | None, float]:
        """(encoder name, model file digest, sheet context) of the visual index taking part, for fusion's calibration
        (an ``@sheet=`` index may have an entry of its own: ``fusion.calibration_entry``)."""
        if "visual" not in indexes:
            return None, None, 0.0
        identity = (self._settings("visual") or {}).get("identity") or {}
        return self._visual_name(indexes), identity.get("model_sha256"), float(identity.get("sheet_context") or 0.0)

    def snapshot(self) -> IndexSnapshot:
        """The indexes the last index run wrote; a newer run's are opened whole and swapped in."""
        directory = index_dir(self.collection.root)
        current = self._snapshot
        if current is not None and current.token == manifest_token(directory):
            return current
        with self._lock:
            current = self._snapshot
            if current is None or current.token != manifest_token(directory):
                current = IndexSnapshot.open(directory)
                self._snapshot = current
                self._freshness.clear()
            return current

    def _index(self, snapshot: IndexSnapshot, modality: str, notes: list[str]):
        """The modality's index in ``snapshot``, or None (with a note) when there is none to use."""
        settings = self._settings(modality)
        if settings is None:
            return None
        root = self.collection.root
        index = snapshot.indexes.get(modality)
        if index is None:
            if modality in snapshot.broken:
                notes.append(f"the {modality} index cannot be opened ({snapshot.broken[modality]}); "
                             f"rebuild it: figsearch index --collection {root} --rebuild")
            return None
        if index.encoder != settings["key"]:
            notes.append(f"the {modality} index was built with another encoder than the collection's "
                         f"({settings['spec']}); run: figsearch index --collection {root}")
            return None
        freshness = self._fresh(snapshot, modality, index)
        if freshness.missing:
            notes.append(f"the {modality} index is stale: {freshness.missing} figure(s) added since the last "
                         f"`figsearch index` cannot be found yet; run it to include them")
        if freshness.changed:
            notes.append(f"the {modality} index is stale: stored vectors of {freshness.changed} figure(s) changed "
                         f"since the last `figsearch index` (they are found by their old ones); run it to update them")
        return index

    def _fresh(self, snapshot: IndexSnapshot, modality: str, index) -> Freshness:
        """How the index compares with the stored vectors (counted at most every STATE_CHECK_SECONDS)."""
        key, now = index.encoder, time.monotonic()
        cached = self._freshness.get(modality)
        if cached and cached[0] == snapshot.token and cached[1] == key and now - cached[2] < STATE_CHECK_SECONDS:
            return cached[3]
        vectors = self.collection.vectors
        entry = index.entry
        missing, changed = 0, 0
        if vectors.state(modality, key) != entry.get("db_state"):
            top = entry.get("max_rowid", 0)
            # a replaced vector gets a new rowid: it leaves the indexed range and shows up above it
            changed = max(index.count - vectors.count_up_to(modality, key, top), 0)
            missing = max(vectors.count_after(modality, key, top) - changed, 0)
        if modality == "visual":  # drawings ingested since: no vector yet (a text vector needs text, so not counted)
            missing += vectors.unembedded_drawings(modality, key)
        freshness = Freshness(missing=missing, changed=changed)
        with self._lock:
            self._freshness[modality] = (snapshot.token, key, now, freshness)
        return freshness

    def _encode(self, modality: str, inputs) -> np.ndarray:
        """Encoders are not all safe to call from two threads at once (tokenisers, torch modules)."""
        encoder = self._encoder(modality)
        with self._encode_locks[modality]:
            return encoder.encode(inputs)

    def _encoder(self, modality: str):
        with self._encoder_lock:
            if modality in self._encoders:
                return self._encoders[modality]
            settings = self._settings(modality)
            if settings is None:
                root = self.collection.root
                if modality == "text":
                    raise EmptyCollection(
                        f"collection {root} has no text vectors (it was indexed without a text model); "
                        f"run: figsearch index --collection {root} --text-model minilm"
                    )
                raise EmptyCollection(f"collection {root} has no indexed drawings; run: figsearch index --collection {root}")
            if modality == "visual":
                options = {}
                if self.compute_threads and parse_spec(settings["spec"])[0] in THREADED_VISUAL:
                    options["threads"] = self.compute_threads
                encoder = create_visual(settings["spec"], **options)
            else:
                options = {}
                if self.compute_threads and parse_spec(settings["spec"])[0] in THREADED_TEXT:
                    options["threads"] = self.compute_threads
                encoder = create_text(settings["spec"], **options)
            self._limit_torch_threads()  # a torch encoder sets its own threads when it loads
            if encoder_key(encoder) != settings["key"]:
                raise CollectionError(
                    f"the {modality} encoder {settings['spec']!r} here is not the one collection "
                    f"{self.collection.root} was indexed with (its identity changed: {encoder.identity} vs "
                    f"{settings['identity']}); re-run: figsearch index --collection {self.collection.root}"
                )
            self._encoders[modality] = encoder
            return encoder

    def warm(self) -> list[str]:
        """Loads the encoders the collection was indexed with, and the reader of uploads' words when it
        has text vectors, so that the first searches do not pay for it (a server calls this at start).
        What cannot be loaded is left for the search that needs it to report; returns what was loaded."""
        loaded = []
        for modality in MODALITIES:
            if self._settings(modality) is None:
                continue
            try:
                self._encoder(modality)
                loaded.append(modality)
            except (FigsearchError, ImportError, OSError) as error:
                log.info("the %s encoder was not loaded ahead: %s", modality, error)
        if self._settings("text") is not None and callable(getattr(self.reader, "warm", None)):
            if self.reader.warm():
                loaded.append("words")
        return loaded

    # -- search ----------------------------------------------------------------------------------

    def _check(self, query: Query) -> None:
        if query.mode not in MODES:
            raise InputError(f"unknown mode {query.mode!r}; choose one of: {', '.join(MODES)}")
        if not 1 <= query.k <= MAX_K:
            raise InputError(f"k={query.k} is out of range: ask for 1 to {MAX_K} hits")
        if not 0 <= query.offset <= MAX_OFFSET:
            raise InputError(f"offset={query.offset} is out of range (0 to {MAX_OFFSET})")
        if query.text_weight is not None and not 0.0 <= query.text_weight <= 1.0:
            raise InputError(f"text_weight={query.text_weight} must lie between 0 and 1")
        if query.figure_id and query.image is not None:
            raise InputError("give a figure id or an image as the query drawing, not both")
        if query.page < 1:
            raise InputError(f"page={query.page}: pages are numbered from 1")
        if query.page != 1 and query.image is None:
            raise InputError("page picks a page of the query image file: give an image")
        if query.neighbour_text and query.mode not in NEIGHBOUR_TEXT_MODES:
            raise InputError(f"neighbour_text is an option of the modes 'visual' and 'auto' (a drawing searched "
                             f"without words), not of mode {query.mode!r}")
        if not (query.figure_id or query.image is not None or (query.text and query.text.strip())):
            raise InputError("a query needs at least one of: a figure id, an image, a text")
        check_filters(query.filters)

    def _reads_words(self, query: Query) -> bool:
        """Whether an uploaded drawing's words are read: the mode uses text and the collection has it."""
        return query.read_words and query.mode != "visual" and self._settings("text") is not None

    def _query_vectors(self, query: Query, notes: list[str], timings: dict[str, float],
                       snapshot: IndexSnapshot | None = None) -> tuple[dict[str, np.ndarray], str | None, list[str], object]:
        """Per modality, one or more query vectors (rows); a figure scores its best match among them.
        Also the query figure's patent, the words read in the query drawing (they make or join its text)
        and the decoded upload (None without one). What the query's mode does not score with is not
        computed (a text-mode upload is not encoded as a drawing)."""
        vectors: dict[str, np.ndarray] = {}
        patent = image = None
        texts: list[str] = [query.text.strip()] if query.text and query.text.strip() else []
        read: list[str] = []
        used = (query.mode,) if query.mode in ("visual", "text") else MODALITIES
        if query.figure_id:
            figure = self.collection.figure(query.figure_id)
            patent = figure.patent
            for modality in MODALITIES:
                settings = self._settings(modality)
                if settings is None or modality not in used or (modality == "text" and query.text):
                    continue
                stored = self.collection.vectors.fetch(modality, settings["key"], [figure.figure_id])
                if figure.figure_id in stored:
                    vectors[modality] = stored[figure.figure_id][None, :]
                elif modality == "visual" and figure.image_path:
                    # a figure not indexed yet (or a front page): encode its stored image
                    image = load_query_image(self.collection.path(figure.image_path), figure.figure_id)
                    vectors[modality] = self._encode("visual", [image])
                elif modality == "text":
                    notes.append(f"figure {figure.figure_id} has no text vector: its text takes no part")
        if query.image is not None:
            started = time.perf_counter()
            name = getattr(query.image, "name", None) or "query image"
            image, pages = load_query_page(query.image, name, page=query.page)
            timings["decode"] = _ms(started)
            if note := page_note(query.page, pages, "Query(page=N)"):
                notes.append(note)
            rows, words = self._encode_upload(image, query, timings, snapshot)
            if rows is not None:
                vectors["visual"] = rows
            if words is not None:
                read = [w.text for w in words]
                if words and not any(_letters(w.text) >= UPLOAD_WORD_LETTERS for w in words):
                    # a drawing whose only words are one or two letters long ("FI", the cut end of "FIG. 3"; a stray
                    # "if") has nothing to say to the text channel, yet `auto` would weigh that text as a query's
                    notes.append(f"the words read in the drawing ({', '.join(read)}) are too short to search with: "
                                 f"none has {UPLOAD_WORD_LETTERS} letters")
                    words = []
                if words:
                    texts.append(words_text(words))
                elif self.reader.unavailable:
                    notes.append(f"the words of the drawing were not read: {self.reader.unavailable}")
        typed = query.text.strip() if query.text else ""
        drawn = None
        if typed and "visual" not in vectors and query.mode != "text":
            # no drawing to search with: the words themselves may search the drawings
            drawn = self._words_to_drawings(typed, required=query.mode == "visual")
            if drawn is not None:
                vectors["visual"] = drawn
                notes.append("the text also searched the drawings, mapped into the drawing space by the "
                             "visual encoder's text adapter")
        if texts and query.mode != "visual":
            if drawn is not None and self._settings("text") is None:
                notes.append("the collection has no text vectors: the text searched the drawings only")
            else:
                # typed text and the drawing's words count alike, as a figure's sentences do
                started = time.perf_counter()
                encoded = l2_normalise(self._encode("text", texts))
                vectors["text"] = l2_normalise(encoded.mean(axis=0, keepdims=True))
                timings["text"] = _ms(started)
        return vectors, patent, read, image

    def _encode_upload(self, image, query: Query, timings: dict[str, float], snapshot: IndexSnapshot | None = None):
        """(the visual rows of the drawing's orientations, or None in text mode, which does not use them;
        the words read in it, or None when the query reads none). Both from the cache when this drawing
        was encoded before; else the words are read in a thread of their own while the orientations
        are encoded (one batch), since neither needs the other. The drawing is encoded upright first,
        and its other orientations only when the upright one is not confident (``_upright_suffices``)."""
        want_visual = query.mode != "text"
        want_words = self._reads_words(query)
        pixels = _QueryCache.key(image)
        visual_key = words_key = None
        rows = words = None
        if want_visual:
            settings = self._settings("visual")
            if settings is not None:  # else _encode below raises: nothing indexed to search
                visual_key = (*pixels, "visual", settings["key"], self.query_rotations)
                rows = self._query_cache.get(visual_key)
        if want_words:
            words_key = (*pixels, "words")  # one reader per service
            words = self._query_cache.get(words_key)
        reading = _WORDS_POOL.submit(self._read_words, image) if want_words and words is None else None
        first_pass = (want_visual and visual_key is not None and not query.all_turns
                      and self.upright_confident is not None and len(self.query_rotations) > 1
                      and self.query_rotations[0] == 0)
        if want_visual:
            started = None
            if rows is None:  # the upright drawing alone first, when the rule may spare the other turns
                started = time.perf_counter()
                rows = self._encode_turns(image, (0,) if first_pass else self.query_rotations)
            upright = first_pass and self._upright_suffices(rows[0], snapshot, timings)
            if not upright and len(rows) < len(self.query_rotations):
                # the other turns, one batch: the same vectors, to the bit, as all of them in one batch
                started = started or time.perf_counter()
                rows = np.vstack([rows, self._encode_turns(image, self.query_rotations[len(rows):])])
            if started is not None:
                timings["visual"] = _ms(started)
                if visual_key is not None:
                    self._query_cache.put(visual_key, rows)
            if upright:
                rows = rows[:1]  # whatever the cache held: the rule's answer does not depend on it
            timings["turns"] = float(len(rows))
        if reading is not None:
            started = time.perf_counter()
            words, timings["words"] = reading.result()
            timings["words_wait"] = _ms(started)
            if not self.reader.unavailable:
                self._query_cache.put(words_key, words)
        if (want_visual and "visual" not in timings) or (want_words and reading is None):
            timings["cached"] = 1.0
        return (None if rows is None else rows.copy()), (None if words is None else list(words))

    def near_copy(self, image, rows: np.ndarray | None = None, snapshot: IndexSnapshot | None = None):
        """(the collection's figure that the uploaded ``image`` is a copy of, how it was recognised) or None:
        the upload's best visual match when it scores at least ``NEAR_COPY``, else one of its best
        ``NEAR_COPY_PIXELS`` matches (or the sheet such a figure was cut from) whose stored image has the
        upload's very pixels, else a figure whose stored PNG is the upload's as ingest would store it (its
        digest, ``figures.image_sha256``): a front page, which the visual index does not hold. ``rows``: the
        upload's visual vectors when the search encoded them (each orientation searched with, a figure scoring its
        best); a text-mode search did not, and the upright drawing is encoded here."""
        index = self._index(snapshot or self.snapshot(), "visual", [])
        if index is not None and index.count:
            if rows is None or not len(rows):
                rows = self._encode_turns(image, (0,))
            found = self._search_rows(index, rows, NEAR_COPY_PIXELS)  # every turn searched with (all_turns): its best
            if found and found[0][1] >= NEAR_COPY:
                return self.collection.figure(found[0][0]), f"visual cosine {found[0][1]:.3f}"
            pixels = np.asarray(image)
            seen: set[str] = set()
            for figure_id, _ in found:
                figure = self.collection.figure(figure_id)
                for candidate in (figure, self.collection.figure(figure.parent_id) if figure.parent_id else None):
                    if candidate is None or candidate.figure_id in seen or not candidate.image_path:
                        continue
                    seen.add(candidate.figure_id)
                    if (candidate.width, candidate.height) != image.size:  # the stored size: no file read
                        continue
                    if _same_pixels(self.collection.path(candidate.image_path), pixels):
                        return candidate, "the same pixels"
        return self._stored_copy(image)

    def _stored_copy(self, image):
        """(a figure whose stored PNG is ``image`` encoded as ingest stores it, "the same stored image") or None.
        The digest names the stored bytes: a collection whose PNGs an earlier figsearch encoded otherwise is not
        matched so (its drawings still are, by the pixel comparison above). A few ms for a full sheet's PNG."""
        from figsearch.fsutil import sha256_bytes
        from figsearch.imaging import encode_png

        stored = self.collection.patents.figures_with_image(sha256_bytes(encode_png(image)))
        if not stored:
            return None
        figure = stored[0]
        return figure, "the same stored image" + (", its front page" if figure.role == FigureRole.FRONT_PAGE else "")

    def _upright_suffices(self, row: np.ndarray, snapshot: IndexSnapshot | None, timings: dict[str, float]) -> bool:
        """Whether the upright drawing's best match in the visual index scores at least ``upright_confident``
        (then its other turns are not encoded; at -1, the default, any match does). The match is looked up
        even then (one nearest neighbour, no measurable CPU): the result's timings report its score. No
        usable index: False (every turn, as before)."""
        index = self._index(snapshot or self.snapshot(), "visual", [])
        found = index.search(row, 1) if index is not None and index.count else []
        if not found:
            return False
        timings["upright_score"] = round(float(found[0][1]), 4)
        return found[0][1] >= self.upright_confident

    def _encode_turns(self, image, angles=None) -> np.ndarray:
        """The drawing's vectors in each of ``angles`` (default ``query_rotations``), one batch. An encoder with
        ``encode_turns`` (the ``backbone`` one) prepares the turns from one pass over the drawing's ink
        (the same vectors, for less work); one that is ``thread_safe`` is not locked, so that two
        uploads of one process encode side by side (onnxruntime runs concurrent calls of a session)."""
        angles = tuple(self.query_rotations if angles is None else angles)
        encoder = self._encoder("visual")
        turns = getattr(encoder, "encode_turns", None)
        if not callable(turns):
            return self._encode("visual", [image.rotate(a, expand=True, fillcolor=255) if a else image
                                           for a in angles])
        if getattr(encoder, "thread_safe", False):
            return turns(image, angles)
        with self._encode_locks["visual"]:
            return turns(image, angles)

    def _read_words(self, image) -> tuple[list, float]:
        started = time.perf_counter()
        return self.reader.read(image), _ms(started)

    def _words_to_drawings(self, words: str, *, required: bool) -> np.ndarray | None:
        """A text query as a vector of the visual index, when the collection's visual encoder can map words
        (``encode_text_query``: the ``backbone`` encoder's text adapter); None when it cannot and
        ``required`` is false (a fused search then uses the text channel alone)."""
        settings = self._settings("visual")
        if settings is None:
            if required:
                self._encoder("visual")  # raises: the collection has no indexed drawings
            return None
        if required:
            encoder = self._encoder("visual")
        else:
            try:  # a text search worked before without the visual model: it must not fail for want of it
                encoder = self._encoder("visual")
            except (ModelUnavailable, CollectionError) as error:
                log.info("text query not mapped into the drawing space: %s", error)
                return None
        root = self.collection.root
        refusal = (f"the visual encoder {settings['spec']!r} of collection {root} cannot search drawings by words: "
                   f"mode 'visual' with a text query needs a visual encoder with a text adapter, such as "
                   f"the default {DEFAULT_VISUAL_ENCODER!r} (figsearch index --collection {root} "
                   f"--visual-model {DEFAULT_VISUAL_ENCODER})")
        if not callable(getattr(encoder, "encode_text_query", None)):
            if required:
                raise InputError(refusal)
            return None
        try:
            text_encoder, text_lock = self._adapter_text_encoder(encoder)
            # the visual lock first, then the text one: the only place holding both, so no deadlock
            with self._encode_locks["visual"], text_lock:
                return np.atleast_2d(encoder.encode_text_query([words], text_encoder=text_encoder))
        except ModelUnavailable as error:  # a model trained without text alignment
            if required:
                raise InputError(f"{refusal} ({error})") from error
            log.info("text query not mapped into the drawing space: %s", error)
            return None

    def _adapter_text_encoder(self, encoder) -> tuple[object, threading.Lock]:
        """The sentence encoder the visual encoder's text adapter was trained on (the collection's own when
        it is the same), with the lock that guards it."""
        name = getattr(encoder, "text_model", None) or "minilm"
        settings = self._settings("text")
        if settings is not None and settings["spec"] == name:
            return self._encoder("text"), self._encode_locks["text"]
        with self._encoder_lock:
            key = f"words->visual:{name}"
            if key not in self._encoders:
                self._encoders[key] = create_text(name)
                self._encode_locks[key] = threading.Lock()
                self._limit_torch_threads()
            return self._encoders[key], self._encode_locks[key]

    def _modalities(self, snapshot: IndexSnapshot, query: Query, vectors: dict, notes: list[str]) -> dict:
        """The indexes of ``snapshot`` that take part, by modality."""
        root = self.collection.root
        if query.mode in ("visual", "text"):
            wanted = [query.mode]
            if query.mode not in vectors:
                need = ("an image, a figure id, or a text with a visual encoder that reads words" if query.mode == "visual"
                        else "a text, a figure that has text, or a drawing with words printed in it "
                             "(none that could be searched with were read in this one)" if query.image is not None
                        else "a text, or a figure that has text")
                raise InputError(f"mode {query.mode!r} needs {need}")
        else:
            wanted = [m for m in MODALITIES if m in vectors]
        usable = {}
        for modality in wanted:
            reasons: list[str] = []
            index = self._index(snapshot, modality, reasons)
            if index is None:
                if len(wanted) == 1:
                    what = "text vectors (no figure has text, or text was left out)" if modality == "text" else "indexed drawings"
                    raise EmptyCollection(
                        reasons[0] if reasons else
                        f"collection {root} has no {what}; run: figsearch index --collection {root}"
                        + (" --text-model minilm" if modality == "text" else "")
                    )
                notes.extend(reasons)
                notes.append(f"the collection has no {modality} index: {modality} takes no part")
                continue
            notes.extend(reasons)
            usable[modality] = index
        if query.mode not in ("visual", "text") and len(usable) == 1:
            notes.append(f"mode {query.mode!r} has only the {next(iter(usable))} modality to work with")
        return usable

    def _candidates(self, index, vector: np.ndarray, length: int, query: Query,
                    exclude_patents: set[str], exclude_figures: set[str]) -> list[tuple[str, float]]:
        """The best ``length`` figures of one index that pass the filters, best first."""
        depth = length + len(exclude_figures)
        while True:
            found = self._search_rows(index, vector, depth)
            allowed = passing(self.collection, [f for f, _ in found], query.filters, exclude_patents, exclude_figures)
            candidates = [(f, s) for f, s in found if f in allowed]
            if len(candidates) >= length or depth >= index.count:
                return candidates[:length]
            depth *= 4  # filters took too many: look deeper

    def _lend_texts(self, snapshot: IndexSnapshot, query: Query, lists: dict, vectors: dict, indexes: dict,
                    notes: list[str], length: int, exclude_patents: set[str], exclude_figures: set[str]) -> bool:
        """``Query.neighbour_text``: the text list searched with the texts of the visual list's nearest figures
        (search/neighbour_text.py); adds it to ``lists``, ``vectors`` and ``indexes``. False (and a note) when the
        collection has no text index or none of those figures has text: the search stays visual alone."""
        reasons: list[str] = []
        index = self._index(snapshot, "text", reasons)
        if index is None:
            notes.extend(reasons)
            notes.append("neighbour_text: the collection has no text index, the drawing is searched alone")
            return False
        head = lists["visual"][: neighbour_text.LOOK]
        texts = self.collection.vectors.fetch("text", index.encoder, [f for f, _ in head])
        if not neighbour_text.lends(head, texts):
            notes.append("neighbour_text: the drawing's nearest figure has no text (its own patent may have none), "
                         "the drawing is searched alone" if neighbour_text.GATE == 1 else
                         f"neighbour_text: not all the drawing's {neighbour_text.GATE} nearest figures have text, "
                         "the drawing is searched alone")
            return False
        vector, lenders = neighbour_text.text_vector(head, texts)
        if vector is None:
            notes.append(f"neighbour_text: none of the drawing's {len(head)} nearest figures has text, "
                         "the drawing is searched alone")
            return False
        vectors["text"] = vector[None, :]
        indexes["text"] = index
        lists["text"] = self._candidates(index, vectors["text"], length, query, exclude_patents, exclude_figures)
        # the mode now has a text channel after all: "has only the visual modality" would contradict the next note
        notes[:] = [n for n in notes if not n.startswith(f"mode {query.mode!r} has only the ")]
        notes.append(f"neighbour_text: the text channel searched with the texts of {', '.join(lenders)} "
                     "(the drawing's nearest figures with text)")
        return True

    # -- the lexical part of the text channel (figsearch.search.lexical) ------------------------------

    def _drawing_languages(self, token) -> list[str]:
        """The known languages of the collection's drawings with text (``lexical.collection_languages``), read once
        per index snapshot ``token`` (an index run fills the lexical table before it writes the indexes)."""
        cached = self._lexical_languages
        if cached is None or cached[0] != token:
            cached = (token, lexical.collection_languages(self.collection))
            self._lexical_languages = cached
        return cached[1]

    def _lexical_wanted(self, query: Query, notes: list[str], snapshot: IndexSnapshot) -> bool:
        """Whether this search adds BM25 to its text channel: typed words, and ``Query.lexical`` (None: as
        ``lexical.on_by_default`` for the collection's languages, with a note when a collection in several languages
        keeps it off); False with a note when the collection has no lexical table yet."""
        if not (query.text and lexical.tokens(query.text)) or query.lexical is False:
            return False
        if query.lexical is None:
            if not lexical.LEXICAL_BY_DEFAULT:
                return False
            languages = self._drawing_languages(snapshot.token)
            if not lexical.on_by_default(languages):
                notes.append(f"lexical: off by default in this collection, its drawings' texts are in "
                             f"{len(languages)} languages ({', '.join(languages)}) and typed words are matched in "
                             "one language only (docs/lexical.md); ask for it with --lexical or lexical=true")
                return False
        if not self.collection.lexical.present():
            notes.append(f"lexical: the collection has no lexical (BM25) table yet, the text channel is dense only; "
                         f"build it with: figsearch index --collection {self.collection.root}")
            return False
        return True

    def _add_lexical(self, query: Query, lists: dict, vectors: dict, index, notes: list[str], length: int,
                     exclude_patents: set[str], exclude_figures: set[str]) -> tuple[dict[str, float], float, str | None]:
        """Replaces ``lists["text"]`` by the dense list fused with the BM25 list of the query's content words
        (``lexical.fuse_text``) at this query's BM25 share (``lexical.query_weight`` of the dense list's best
        cosine); figures whose patent is in another language than the query keep their cosine. Returns (each BM25
        candidate's normalised score, the share, the query's language or None)."""
        language = lexical.query_language(query.text)
        match = lexical.match_expression(query.text)
        if match is None:  # function words only ("the a by"): nothing for BM25 to weigh
            notes.append("lexical: the query's words are all function words (the, a, der, le, ...), BM25 share 0: "
                         "the text channel is the cosine")
            return {}, 0.0, language
        depth = length + len(exclude_figures)
        while True:
            found = self.collection.lexical.search(match, depth)
            allowed = passing(self.collection, [f for f, _ in found], query.filters, exclude_patents, exclude_figures)
            candidates = [(f, s) for f, s in found if f in allowed]
            if len(candidates) >= length or len(found) < depth:
                break
            depth *= 4  # filters took too many: look deeper
        candidates = candidates[:length]
        dense = lists["text"]
        languages = lexical.figure_languages(self.collection, {f for f, _ in dense} | {f for f, _ in candidates})
        how = "detected"
        if language is None:
            language, how = lexical.matched_language([languages.get(f) for f, _ in candidates]), "of its words' figures"
        others = {f for f, lang in languages.items() if lexical.other_language(lang, language)}
        candidates = [(f, s) for f, s in candidates if f not in others]  # BM25 cannot judge them: no candidates
        listed = {f for f, _ in dense}
        stored = self.collection.vectors.fetch("text", index.encoder, [f for f, _ in candidates if f not in listed])
        cosine = {f: float(np.max(vectors["text"] @ v)) for f, v in stored.items()}
        weight = lexical.query_weight(dense[0][1] if dense else None) if candidates else 0.0
        lists["text"], bm25 = lexical.fuse_text(dense, candidates, cosine, weight, others)
        if not candidates:  # share 0, not 0.5 x every cosine: auto mode fuses the text channel on its own scale
            notes.append("lexical: no figure" + (f" in the query's language ({language})" if others else "")
                         + " contains the query's words, BM25 share 0: the text channel is the cosine")
        elif weight > 0:
            notes.append(f"lexical: {len(candidates)} figure(s) contain the query's words; the text channel is "
                         f"{1 - weight:g} x cosine + {weight:g} x BM25 (normalised)")
        else:
            notes.append(f"lexical: {len(candidates)} figure(s) contain the query's words; BM25 share 0: the best "
                         f"figure text is a near paraphrase of the query (cosine {dense[0][1]:.2f} >= "
                         f"{lexical.DENSE_CONFIDENT:g}), the text channel is the cosine")
        if others and weight > 0:
            notes.append(f"lexical: the query is in {language} ({how}); {len(others)} figure(s) in other languages "
                         "keep their cosine (BM25 compares the words of one language)")
        return bm25, weight, language

    def _lexical_exact(self, scores: dict[str, float], bm25: dict[str, float], weight: float,
                       language: str | None) -> dict[str, float]:
        """The fused text score of figures outside the text list (``exact``): as ``lexical.fuse_text`` scores."""
        if weight == 0:
            return scores
        languages = lexical.figure_languages(self.collection, scores) if language else {}
        return {f: c if lexical.other_language(languages.get(f), language)
                else lexical.fused_score(c, bm25.get(f, 0.0), weight) for f, c in scores.items()}

    def _explain_lexical(self, hits: list[Hit], text: str) -> None:
        """Each hit's ``matched_words``: the query words its lexical text contains."""
        documents = self.collection.lexical.texts([h.figure_id for h in hits])
        for hit in hits:
            hit.matched_words = lexical.matched_words(text, documents.get(hit.figure_id, ""))

    @staticmethod
    def _search_rows(index, rows: np.ndarray, depth: int) -> list[tuple[str, float]]:
        """Nearest figures to any of the query rows, each with its best score."""
        if len(rows) == 1:
            return index.search(rows[0], depth)
        best: dict[str, float] = {}
        for row in rows:
            for figure_id, score in index.search(row, depth):
                if score > best.get(figure_id, -np.inf):
                    best[figure_id] = score
        return sorted(best.items(), key=lambda item: -item[1])[:depth]

    def search(self, query: Query) -> SearchResult:
        start = time.perf_counter()
        self._check(query)
        notes: list[str] = []
        snapshot = self.snapshot()  # one snapshot for the whole search, even if a newer one lands meanwhile
        timings: dict[str, float] = {}
        vectors, query_patent, query_words, upload = self._query_vectors(query, notes, timings, snapshot)
        searching = time.perf_counter()
        indexes = self._modalities(snapshot, query, vectors, notes)
        modalities = list(indexes)
        exclude_patents = set(query.filters.exclude_patents)
        if query.exclude_query_patent:
            if query_patent:
                exclude_patents.add(query_patent)
            elif upload is not None:
                copy = self.near_copy(upload, vectors.get("visual"), snapshot)
                if copy is None:
                    turned = "" if query.all_turns else " (a sheet turned sideways is matched with all_turns)"
                    notes.append("exclude_query_patent: the upload matches no drawing of the collection closely "
                                 f"(visual cosine below {NEAR_COPY:g}, no stored image with its pixels){turned}, "
                                 "nothing to exclude; exclude_patents leaves out patents by number")
                else:
                    figure, how = copy
                    exclude_patents.add(figure.patent)
                    notes.append(f"exclude_query_patent: the upload matches {explain.figure_name(figure)} ({how}): "
                                 f"its patent {figure.patent} is left out")
            else:
                notes.append("exclude_query_patent: the query is not a figure of the collection, nothing to exclude")
            # its other publications (an A1's B1, an application's grant: the same drawings granted) are the same
            # patent to whoever asks
            for own in sorted(exclude_patents - set(query.filters.exclude_patents)):
                kinds = self.collection.patents.other_kinds(own)
                if kinds:
                    exclude_patents.update(kinds)
                    which = "another publication" if len(kinds) == 1 else "other publications"
                    notes.append(f"exclude_query_patent: {', '.join(kinds)}, {which} of {own}'s application, "
                                 f"{'is' if len(kinds) == 1 else 'are'} left out too")
        exclude_figures = {query.figure_id} if query.figure_id else set()
        length = max(LIST_FACTOR * (query.k + query.offset), MIN_LIST)
        # what fusion measures on the lists is measured as deep as the first page of this page size reaches: a later
        # page's longer lists then score every figure as the first page did (pages neither repeat nor skip hits)
        measure_depth = max(LIST_FACTOR * query.k, MIN_LIST)
        # a page is cut from one ranking, the same for every page of its size: the first page's (lists measure_depth
        # long), followed by what lists twice, four times ... as long rank beyond it, as deep as the page needs. Pages
        # neither repeat nor skip hits (they did: each page searched lists of its own length), and a page within the
        # first page's ranking (its lists' union, at least 100 figures) costs what the first page costs
        fused, mode, modalities, bm25 = self._rank(snapshot, query, dict(vectors), dict(indexes), notes, timings,
                                                   measure_depth, measure_depth, exclude_patents, exclude_figures)
        depth, reached = measure_depth, len(fused)
        while len(fused) < query.offset + query.k and depth < length:
            depth *= 2
            more = self._rank(snapshot, query, dict(vectors), dict(indexes), [], {}, depth, measure_depth,
                              exclude_patents, exclude_figures)[0]
            if len(more) <= reached:  # longer lists found no more candidates: the collection has no more that pass
                break
            reached = len(more)
            ranked = {f.figure_id for f in fused}
            fused += [f for f in more if f.figure_id not in ranked]
        page = fused[query.offset : query.offset + query.k]
        timings["search"] = _ms(searching)
        explaining = time.perf_counter()
        hits = self._hits(page, query.offset)
        if bm25 is not None:
            self._explain_lexical(hits, query.text)
        timings["explain"] = _ms(explaining)
        return SearchResult(
            hits=hits, total=len(fused), mode=mode, modalities=modalities, notes=notes,
            took_ms=_ms(start), query_words=query_words, timings=timings,
        )

    def _rank(self, snapshot, query: Query, vectors: dict, indexes: dict, notes: list[str], timings: dict,
              length: int, measure_depth: int, exclude_patents: set[str], exclude_figures: set[str]):
        """(the fused ranking of candidate lists ``length`` long, the mode used, the modalities, the BM25 scores or
        None). ``measure_depth``: where fusion and re-ranking measure what they measure (``fusion.fuse``,
        ``_rerank_visual``); ``vectors`` and ``indexes`` are the query's, changed here (neighbour_text adds the text
        channel): a copy for each call."""
        modalities = list(indexes)
        lists = {
            m: self._candidates(indexes[m], vectors[m], length, query, exclude_patents, exclude_figures) for m in modalities
        }
        lent = False
        lend = neighbour_text_by_default(query.mode) if query.neighbour_text is None else query.neighbour_text
        # in auto only a drawing without text of its own borrows (the visual mode never searches with its own)
        if lend and "visual" in lists and (query.mode == "visual" or "text" not in lists):
            lending = time.perf_counter()
            lent = self._lend_texts(snapshot, query, lists, vectors, indexes, notes, length, exclude_patents,
                                    exclude_figures)
            modalities = list(indexes)
            timings["neighbour_text"] = _ms(lending)
        bm25 = None
        if not lent and "text" in lists and self._lexical_wanted(query, notes, snapshot):
            lexing = time.perf_counter()
            bm25, bm25_weight, bm25_language = self._add_lexical(query, lists, vectors, indexes["text"], notes,
                                                                 length, exclude_patents, exclude_figures)
            timings["lexical"] = _ms(lexing)
        exact: dict[str, dict[str, float]] = {}
        if len(modalities) == 2:
            union = {f for candidates in lists.values() for f, _ in candidates}
            for modality in modalities:
                missing = union - {f for f, _ in lists[modality]}
                stored = self.collection.vectors.fetch(modality, indexes[modality].encoder, missing)
                exact[modality] = {f: float(np.max(vectors[modality] @ v)) for f, v in stored.items()}
            if bm25 is not None:  # the text channel's scores are the fused ones (lexical.fuse_text) everywhere
                exact["text"] = self._lexical_exact(exact["text"], bm25, bm25_weight, bm25_language)
        mode = query.mode if len(modalities) == 2 or query.mode in ("visual", "text") else modalities[0]
        head = None
        if "visual" in lists and (rerank_by_default(mode) if query.rerank is None else query.rerank):
            if mode == "auto" and len(lists) == 2:  # auto's switch reads the head before re-ranking (fusion.fuse)
                head = fusion.switch_head({m: c[:measure_depth] for m, c in lists.items()})
            key = indexes["visual"].encoder
            lists, exact = self._rerank_visual(lists, exact, vectors["visual"], measure_depth if length > measure_depth
                                               else None, lambda ids: self.collection.vectors.fetch("visual", key, ids))
        weight = query.text_weight if len(modalities) == 2 and not lent else None
        if query.text_weight is not None and weight is None:
            notes.append("text_weight ignored: only one modality takes part" if not lent else
                         "text_weight ignored: neighbour_text fuses with its own weight")
        calibration = fusion.near_thresholds(*self._visual_model(indexes)) if mode == "auto" and not lent else {}
        words = mode == "auto" and not lent and self._by_words_alone(query)
        if words:  # the visual list is the words mapped into the drawing space: the drawing queries' thresholds do not hold
            calibration = {**calibration, **fusion.WORDS_THRESHOLDS}
        if mode == "auto" and not lent and not words and "visual" in indexes and (
                note := fusion.calibration_note(*self._visual_model(indexes))):
            notes.append(note)  # the uncalibrated rule is used (docs/evaluation.md)
        if lent:  # neighbour_text: (1 - WEIGHT) * visual + WEIGHT * text, a figure without text its visual score
            fused = neighbour_text.fuse(lists, exact)
        else:
            fused = fuse(lists, exact, mode=mode, text_weight=weight, head=head, measure_depth=measure_depth,
                         **calibration)
        return fused, mode, modalities, bm25

    @staticmethod
    def _by_words_alone(query: Query) -> bool:
        """Whether a query's visual channel, if any, can only be its words mapped into the drawing space (no upload,
        no figure: ``_query_vectors``)."""
        return query.image is None and not query.figure_id and bool(query.text and query.text.strip())

    @staticmethod
    def _rerank_visual(lists: dict, exact: dict, query: np.ndarray, measure_depth: int | None,
                       fetch) -> tuple[dict, dict]:
        """``rerank.rerank_visual`` of the lists; for a later page (``measure_depth``: the first page's depth, None on
        the first page) the first page's candidates keep the scores the first page gave them. Database-side augmentation averages each
        candidate with its neighbours among the candidates, so a longer list moved them, and the pages repeated and
        skipped hits (benchmarks/paging_consistency.py, docs/serving.md "Stop 27")."""
        reranked, rescored = rerank.rerank_visual(lists, exact, query, fetch)
        if measure_depth is None:
            return reranked, rescored
        first_lists = {m: c[:measure_depth] for m, c in lists.items()}
        first_union = {f for c in first_lists.values() for f, _ in c}
        first_exact = {m: {f: s for f, s in e.items() if f in first_union} for m, e in exact.items()}
        head, head_exact = rerank.rerank_visual(first_lists, first_exact, query, fetch)
        first = {**head_exact.get("visual", {}), **dict(head["visual"])}
        visual = [(f, first.get(f, s)) for f, s in reranked["visual"]]
        visual.sort(key=lambda item: (-round(item[1], 9), item[0]))
        if "visual" in rescored:
            rescored = {**rescored, "visual": {f: first.get(f, s) for f, s in rescored["visual"].items()}}
        return {**reranked, "visual": visual}, rescored

    def _hits(self, page: list[Fused], offset: int) -> list[Hit]:
        titles: dict[str, str | None] = {}
        hits = []
        for rank, item in enumerate(page, start=offset + 1):
            figure = self.collection.figure(item.figure_id)
            if figure.patent not in titles:
                titles[figure.patent] = self.collection.patents.title(figure.patent)
            hits.append(
                Hit(
                    figure_id=figure.figure_id,
                    patent=figure.patent,
                    score=item.score,
                    rank=rank,
                    label=figure.label,
                    scores=dict(item.scores),
                    sentences=explain.hit_sentences(self.collection, figure),
                    reference_signs=explain.numerals(self.collection, figure.figure_id),
                    title=titles[figure.patent],
                    thumbnail_path=figure.thumbnail_path,
                )
            )
        return hits

    # -- details and info ------------------------------------------------------------------------

    def figure_details(self, figure_id: str) -> FigureDetails:
        figure = self.collection.figure(figure_id)
        return FigureDetails(
            figure=figure,
            patent_title=self.collection.patents.title(figure.patent),
            reference_signs=explain.reference_signs(self.collection, figure_id),
            sentences=explain.linked_sentences(self.collection, figure),
            glossary=explain.glossary(self.collection, figure.patent),
            children=explain.children(self.collection, figure),
            notes=self.collection.signs.notes_of(figure_id),
            words=self.collection.words.of(figure_id),
        )

    def resolve_figure(self, reference: str) -> str:
        """The id of the figure that ``reference`` names: an id, or e.g. ``EP1667425A1 FIG. 1``."""
        return explain.resolve_figure(self.collection, reference).figure_id

    def patent_details(self, publication_number: str) -> PatentDetails:
        patent = self.collection.patent(publication_number)
        return PatentDetails(
            patent=patent,
            figures=self.collection.figures(patent=publication_number),
            glossary=explain.glossary(self.collection, publication_number),
        )

    def info(self) -> dict:
        manifest = read_manifest(index_dir(self.collection.root))["modalities"]
        encoders, indexes = {}, {}
        for modality in MODALITIES:
            settings = self._settings(modality)
            if settings is None:
                continue
            encoders[modality] = {"spec": settings["spec"], "key": settings["key"], "identity": settings["identity"]}
            entry = manifest.get(modality)
            state = self.collection.vectors.state(modality, settings["key"])
            indexes[modality] = {
                "vectors": state["count"],
                "indexed": entry.get("count") if entry and entry.get("encoder") == settings["key"] else 0,
                "factory": entry["plan"]["factory"] if entry else None,
                "rerank": entry["plan"]["rerank"] if entry else None,
                "nprobe": entry.get("nprobe") if entry else None,
                "calibrated_recall": entry.get("calibrated_recall") if entry else None,
                "built_at": entry.get("built_at") if entry else None,
                # the last append (a weekly build adds to the index it has): None when none since the build
                "updated_at": entry.get("updated_at") if entry else None,
            }
        # a GROUP BY over every figure with text: read once per index run, not at every page load
        languages = self._drawing_languages(manifest_token(index_dir(self.collection.root)))
        return {
            **self.collection.counts(),
            "encoders": encoders,
            "indexes": indexes,
            "modes": list(MODES),
            # what a word query does when it does not say (the web page's box starts so): off in a collection in
            # several languages; present: whether the collection has its BM25 table at all
            "lexical": {"by_default": lexical.on_by_default(languages), "languages": languages,
                        "present": self.collection.lexical.present()},
        }
