"""The API routes. Each one translates HTTP into one call of the search backend and back;
what a search means lives in the backend, not here."""

from __future__ import annotations

import io
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from figsearch.errors import InputError
from figsearch.search.export import hits_csv
from figsearch.search.filters import normalise_date
from figsearch.search.inputs import page_note
from figsearch.search.query import DEFAULT_MODE, MODES, Filters
from figsearch.search.query import Query as SearchQuery
from figsearch.server import schemas
from figsearch.server.errors import error_responses, redact_paths
from figsearch.server.state import ServerState
from figsearch.server.uploads import (
    apply_crop, decode_upload, decode_upload_page, parse_crop, sniff, too_large,
)

router = APIRouter(prefix="/api", responses=error_responses(500))

Mode = Literal["visual", "text", "avg", "max", "rrf", "zavg", "auto"]


class SearchParams(BaseModel):
    """The fields of a search, as query parameters (GET) or form fields (POST, beside an image)."""

    figure_id: str | None = Field(
        None, max_length=300, description="search with this figure of the collection: its id "
        "(EP1667425A1-f0001) or a readable reference (EP1667425A1 FIG. 1)"
    )
    text: str | None = Field(None, max_length=2000, description="words, alone or beside an image")
    mode: Mode = Field(
        DEFAULT_MODE,
        description="visual or text alone, or how both are fused: avg, max, rrf (rank fusion), zavg (mean of "
        "per-query z-scores), auto (z-scores weighted per query by how informative each modality is; per visual encoder, a "
        "near-copy visual head that the text agrees with switches it to avg, a far one to the text alone)",
    )
    rerank: bool | None = Field(
        None, description="re-rank the visual candidates (alpha-query expansion with database-side augmentation); "
        "default: on in the visual and auto modes, off in the others"
    )
    neighbour_text: bool | None = Field(
        None, description="modes visual and auto: a drawing without words borrows the texts of its nearest drawings "
        "for the text channel (in auto only a drawing without text of its own); default on in auto, off in visual"
    )
    lexical: bool | None = Field(
        None, description="the words of `text` also search the figures' texts by BM25 (SQLite FTS5; English, German "
        "and French function words left out), fused into the text channel (BM25 share 0 when the best figure text is "
        "already a near paraphrase of them; figures in another language than the words keep their text score); each "
        "hit's matched_words lists the query words its text contains; default on, except in a collection whose "
        "drawings are in several languages (a note says so)"
    )
    text_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="0..1; when given, score = (1-w)*visual + w*text instead of the mode's rule"
    )
    k: int = Field(12, ge=1, le=100, description="hits per page")
    offset: int = Field(0, ge=0, le=10_000, description="hits to skip (paging)")
    date_from: str | None = Field(None, max_length=10, description="publication date from (inclusive): YYYY-MM-DD, "
                                  "or YYYY-MM or YYYY for the month's or year's first day, as `figsearch search` takes it")
    date_to: str | None = Field(None, max_length=10, description="publication date to (inclusive): YYYY-MM-DD, or "
                                "YYYY-MM or YYYY for the whole month or year")
    office: str | None = Field(None, pattern=r"^[A-Za-z]{2}$", description="publishing office, e.g. US, EP")
    classification: str | None = Field(
        None, max_length=40, description="classification prefix (IPC, CPC, Locarno or USPC), e.g. D14 or G06F"
    )
    exclude_query_patent: bool = Field(False, description="leave out the figures of the query figure's patent; with an upload, of the patent whose drawing it is a copy of (visual cosine >= 0.95, or the pixels of a stored image, a front page's too; the notes say which)")
    exclude_patents: str | None = Field(None, max_length=2000, description="comma-separated publication numbers to leave out")
    crop: str | None = Field(
        None, description="x0,y0,x1,y1 as fractions (0..1) of the image: search with that part only"
    )
    page: int = Field(1, ge=1, le=10_000, description="page of an uploaded PDF or multi-page TIFF (1-based)")
    read_words: bool = Field(
        True, description="read the words printed in the uploaded drawing and, when the mode uses text, search "
        "the text channel with them (beside `text`); the response's query.words lists them"
    )
    all_turns: bool = Field(
        False, description="match the uploaded drawing in all four quarter turns, for a drawing that may be "
        "turned against how it was published (a sheet scanned sideways); by default it is searched upright "
        "alone, a third of the upload's work (docs/serving.md, Stop 21)"
    )

    format: Literal["json", "csv"] = Field(
        "json", description="json: the answer below; csv: the page of hits as a CSV file for a report (rank, patent, "
        "figure, title, scores, matched words, reference signs, sentences, links; search/export.py), the notes in "
        "its X-Figsearch-Notes header"
    )

    model_config = {"extra": "forbid"}

    @field_validator("date_from", "date_to")
    @classmethod
    def _a_date(cls, value: str | None, info):
        # YYYY, YYYY-MM or YYYY-MM-DD of a real date, as the CLI takes them; a 422 naming the field otherwise
        if value is None:
            return None
        try:
            return normalise_date(value, info.field_name)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data):
        # an HTML form sends "" for an empty input: that means "not given", not "invalid"
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data


class SearchForm(SearchParams):
    """A search as a multipart form: the fields of SearchParams beside an optional uploaded image."""

    image: UploadFile | None = Field(None, description="PNG, JPEG, TIFF or PDF (one page of it)")


def _state(request: Request) -> ServerState:
    return request.app.state.figsearch


def _prefix(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _check_upload(data: bytes, state: ServerState, name: str) -> None:
    """What can be refused without decoding, refused on the spot (413, 415, 400) rather than after
    waiting in the upload queue: the size, and a format from the first bytes."""
    if len(data) > state.limits.max_upload_bytes:
        raise too_large(name, None, state.limits)  # read to one byte past the limit: its size is unknown
    sniff(data)


def _resolve_figure(state: ServerState, reference: str) -> str:
    """The id of the figure ``reference`` names: an id, or a readable reference such as
    ``EP1667425A1 FIG. 1``, as ``figsearch search --figure`` and the Python API take it (a backend
    without ``resolve_figure`` takes ids alone)."""
    resolve = getattr(state.backend, "resolve_figure", None)
    return resolve(reference) if resolve is not None else reference


def _build_query(state: ServerState, params: SearchParams, upload: bytes | None, upload_name: str,
                 notes: list[str] | None = None) -> SearchQuery:
    """The service's query for these parameters; ``notes`` gets what the answer should tell of the upload (the page
    searched of a file of several)."""
    crop = parse_crop(params.crop)
    exclude = [p.strip() for p in (params.exclude_patents or "").split(",") if p.strip()]
    figure_id = _resolve_figure(state, params.figure_id.strip()) if params.figure_id and params.figure_id.strip() else None
    exclude_query_patent = params.exclude_query_patent
    image = None
    if upload is not None:
        decoded, pages = decode_upload_page(upload, state.limits, page=params.page, name=upload_name)
        image = apply_crop(decoded, crop)
        if notes is not None and (note := page_note(params.page, pages, "the page field")):
            notes.append(note)
    elif params.page != 1:
        raise InputError(f"page={params.page} picks a page of an uploaded PDF or multi-page TIFF: upload one "
                         "(offset pages through the results)")
    elif crop is not None:
        if not figure_id:
            raise InputError("crop needs an image to cut from: upload one or give figure_id")
        # a crop of a collection figure is an image query; the figure's patent stays excludable
        figure, path = state.figure_file(figure_id, "image")
        with open(path, "rb") as handle:
            data = handle.read()
        image = apply_crop(decode_upload(data, state.limits, name=f"figure {figure_id}"), crop)
        if exclude_query_patent:
            exclude.append(figure.patent)
        # the service sees an image query; its patent is already in the exclusions
        figure_id, exclude_query_patent = None, False
    text = params.text.strip() if params.text else None
    if figure_id is None and image is None and not text:
        raise InputError("nothing to search with: give an image, a figure_id or a text")
    date_from, date_to = params.date_from, params.date_to  # normalised by SearchParams
    if date_from and date_to and date_from[: len(date_to)] > date_to:
        raise InputError(f"date_from {date_from} is after date_to {date_to}")
    filters = Filters(
        date_from=date_from,
        date_to=date_to,
        office=params.office.upper() if params.office else None,
        classification_prefix=params.classification.strip() if params.classification else None,
        exclude_patents=tuple(dict.fromkeys(exclude)),
    )
    return SearchQuery(
        figure_id=figure_id,
        image=image,
        text=text,
        mode=params.mode,
        text_weight=params.text_weight,
        rerank=params.rerank,
        k=params.k,
        offset=params.offset,
        exclude_query_patent=exclude_query_patent,
        read_words=params.read_words,
        all_turns=params.all_turns,
        neighbour_text=params.neighbour_text,
        lexical=params.lexical,
        filters=filters,
    )


#: an upload's phases on its pool thread, in ms, as its Server-Timing gives them: decoding the file (and the
#: crop), encoding the drawing's orientations (the service's ``visual``: preparing and onnxruntime's run), the
#: index search and fusion (``index``, the service's ``search``), the hits' sentences and signs
#: (``explain``) and building the answer (``answer``)
UPLOAD_PHASES = ("decode", "encode", "index", "explain", "answer")


def server_timing(timing: dict) -> str:
    """A ``Server-Timing`` header value (W3C) of a pool call's ``timing`` (BoundedPool.run): how
    long the call waited for a thread, ran, computed on its thread and waited for a core (``runq``, Linux),
    in ms (``load_test.py``
    reads it to say where a request's time went); for an upload also its phases on the thread (``UPLOAD_PHASES``,
    ms) and how many orientations of the drawing were searched with (``turns;desc=1`` upright alone, the
    default; 4 with ``all_turns``)."""
    parts = [f"{name};dur={timing[name]:.1f}" for name in ("queue", "run", "cpu", "runq", *UPLOAD_PHASES)
             if name in timing]
    if "turns" in timing:
        parts.append(f"turns;desc={int(timing['turns'])}")
    return ", ".join(parts)


async def _search(request: Request, params: SearchParams, upload: UploadFile | None,
                  response: Response | None = None) -> schemas.SearchOut:
    state = _state(request)
    data = None
    name = "uploaded image"
    if upload is not None:
        name = f"uploaded file {upload.filename!r}" if upload.filename else name
        # one byte over the limit is enough to know it is too large
        data = await upload.read(state.limits.max_upload_bytes + 1)
        _check_upload(data, state, name)

    prefix = _prefix(request)
    timing: dict = {}

    def run() -> schemas.SearchOut:
        # decoding and searching are one call of the pool: admitted once, never 503 half-way
        decoding = time.perf_counter()
        upload_notes: list[str] = []
        query = _build_query(state, params, data, name, upload_notes)
        started = time.perf_counter()
        result = state.backend.search(query)
        answering = time.perf_counter()
        if not result.took_ms:
            # the service's own timing when it gives one; else the call as seen from here
            result.took_ms = (time.perf_counter() - started) * 1000
        phases = getattr(result, "timings", None) or {}
        # the answer is built here too, in the pool's thread: the hits' links and explanations took
        # about a fifth of the event loop's time per search (cProfile of the loop's thread)
        echo = schemas.QueryEcho(
            figure_id=query.figure_id or params.figure_id,  # the id a readable reference named
            text=query.text,
            image=data is not None,
            crop=list(parse_crop(params.crop) or []) or None,
            mode=params.mode,
            text_weight=params.text_weight,
            words=list(getattr(result, "query_words", [])),
        )
        out = schemas.search_out(result, k=params.k, offset=params.offset, query=echo, prefix=prefix)
        # notes are written for the CLI too ("build it with: figsearch index --collection /srv/coll"): here, as
        # in error messages, the collection goes by its name
        out.notes = upload_notes + [redact_paths(note, state.root) for note in out.notes]
        if query.image is not None:  # where an upload's time on its thread went (load_test.py prints it)
            timing.update(decode=(started - decoding) * 1000, answer=(time.perf_counter() - answering) * 1000)
            for ours, theirs in (("encode", "visual"), ("index", "search"), ("explain", "explain"), ("turns", "turns")):
                if phases.get(theirs) is not None:
                    timing[ours] = phases[theirs]
        return out

    # an image to decode and encode (an upload, or a crop of a collection figure) is an upload's work
    heavy = data is not None or bool(params.crop and params.crop.strip())
    out = await (state.upload(run, timing=timing) if heavy else state.search(run, timing=timing))
    if response is not None and timing:
        response.headers["Server-Timing"] = server_timing(timing)
    return out


_SEARCH_ERRORS = error_responses(400, 401, 404, 409, 413, 415, 422, 501, 503)


_SEARCH_RESPONSES = _SEARCH_ERRORS | {200: {"content": {"text/csv": {}}, "description": "the search's answer; with "
                                             "format=csv, its hits as a CSV file"}}


def _csv_response(out: schemas.SearchOut, response: Response) -> Response:
    """``out``'s hits as a CSV download (search/export.py, the columns of ``figsearch search --csv`` and each hit's
    links), named after the query; the notes travel in a header, since a CSV file has no place for them."""
    import re
    from urllib.parse import quote

    body = hits_csv(out.hits, extra={"espacenet": lambda hit: hit.links.espacenet,
                           "google_patents": lambda hit: hit.links.google_patents})
    named = "-".join(part for part in (out.query.figure_id, out.query.text, "drawing" if out.query.image else None) if part)
    stem = re.sub(r"[^A-Za-z0-9]+", "-", named).strip("-")[:60] or "search"
    first = out.offset + 1
    headers = dict(response.headers)
    headers.pop("content-length", None)
    headers["Content-Disposition"] = (f'attachment; filename="figsearch-{stem}-{first}-{out.offset + len(out.hits)}.csv"')
    if out.notes:  # header values are Latin-1: the notes percent-encoded (UTF-8), as a URL's query is
        headers["X-Figsearch-Notes"] = quote(" · ".join(out.notes), safe=" ,;:()'=-./")
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/search", response_model=schemas.SearchOut, responses=_SEARCH_RESPONSES, tags=["search"])
async def search_get(request: Request, params: Annotated[SearchParams, Query()],
                     response: Response) -> schemas.SearchOut:
    """Search by a figure of the collection, by words, or both (no upload)."""
    out = await _search(request, params, None, response)
    return _csv_response(out, response) if params.format == "csv" else out


@router.post("/search", response_model=schemas.SearchOut, responses=_SEARCH_RESPONSES, tags=["search"])
async def search_post(request: Request, form: Annotated[SearchForm, Form()],
                      response: Response) -> schemas.SearchOut:
    """Search by an uploaded drawing (multipart form), optionally with words, a crop and filters."""
    out = await _search(request, form, form.image, response)
    return _csv_response(out, response) if form.format == "csv" else out


@router.post(
    "/preview",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the decoded page as PNG; "
                     "header X-Page-Count says how many pages the file has"}}
    | error_responses(400, 401, 413, 415, 422, 503),
    tags=["search"],
)
async def preview(
    request: Request,
    image: Annotated[UploadFile, File(description="PNG, JPEG, TIFF or PDF")],
    page: Annotated[int, Form(ge=1, le=10_000)] = 1,
) -> Response:
    """The uploaded file decoded as the search would see it (a TIFF or PDF page as PNG), for display and cropping."""
    state = _state(request)
    data = await image.read(state.limits.max_upload_bytes + 1)
    name = f"uploaded file {image.filename!r}" if image.filename else "uploaded image"
    _check_upload(data, state, name)

    def render() -> tuple[bytes, int]:
        decoded, pages = decode_upload_page(data, state.limits, page=page, name=name)
        buffer = io.BytesIO()
        decoded.save(buffer, format="PNG")
        return buffer.getvalue(), pages

    # decoding is an upload's work: it waits with the uploads
    png, pages = await state.upload(render)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store", "X-Page-Count": str(pages)})


@router.get(
    "/figures/{figure_id}",
    response_model=schemas.FigureDetailsOut,
    responses=error_responses(401, 404, 422, 503),
    tags=["figures"],
)
async def figure(
    request: Request,
    figure_id: Annotated[str, Path(description="the figure's id (EP1667425A1-f0001) or a readable reference "
                                   "(EP1667425A1 FIG. 1)")],
) -> schemas.FigureDetailsOut:
    """A figure: its metadata, the reference signs read in it (with boxes) and the sentences linked to it."""
    state = _state(request)
    details = await state.lookup(lambda: state.backend.figure_details(_resolve_figure(state, figure_id)))
    return schemas.figure_details_out(details, _prefix(request))


async def _figure_file(request: Request, figure_id: str, which: str) -> FileResponse:
    state = _state(request)
    _, path = await state.lookup(state.figure_file, figure_id, which)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


_IMAGE_RESPONSES = {200: {"content": {"image/png": {}}, "description": "PNG"}} | error_responses(401, 404, 422, 503)


@router.get("/figures/{figure_id}/image", response_class=FileResponse, responses=_IMAGE_RESPONSES, tags=["figures"])
async def figure_image(request: Request, figure_id: str) -> FileResponse:
    """The figure's normalised image (PNG, grey)."""
    return await _figure_file(request, figure_id, "image")


@router.get("/figures/{figure_id}/thumbnail", response_class=FileResponse, responses=_IMAGE_RESPONSES, tags=["figures"])
async def figure_thumbnail(request: Request, figure_id: str) -> FileResponse:
    """The figure's thumbnail (PNG), or its image when it has none."""
    return await _figure_file(request, figure_id, "thumbnail")


@router.get(
    "/patents/{publication_number}",
    response_model=schemas.PatentDetailsOut,
    responses=error_responses(401, 404, 422, 503),
    tags=["patents"],
)
async def patent(request: Request, publication_number: str) -> schemas.PatentDetailsOut:
    """A patent: bibliographic data, its figures and its glossary of reference signs."""
    state = _state(request)
    details = await state.lookup(state.backend.patent_details, publication_number)
    return schemas.patent_details_out(details, _prefix(request))


@router.get("/info", responses=error_responses(401, 503), tags=["collection"])
async def info(request: Request) -> dict:
    """The collection: counts, encoders and index types in use, and this server's limits and modes."""
    state = _state(request)
    # the backend's info names the collection by its path, as the CLI's does: here, as in error messages,
    # its name ("collection": "/srv/data/coll" told any client where the server keeps its files)
    data = _without_paths(schemas.jsonable(await state.lookup(state.backend.info)), state.root)
    data.setdefault("modes", list(MODES))
    # a collection built by an older figsearch: what it lacks, with the command (DIR: the collection)
    data["upgrades"] = await state.lookup(_upgrades, state)
    data["limits"] = {
        "max_upload_bytes": state.limits.max_upload_bytes,
        "max_pixels": state.limits.max_pixels,
        "formats": ["png", "jpeg", "tiff", "pdf"],
    }
    return data


#: seconds /api/info reuses its upgrade advice (the page asks for info at every load; the advice counts the
#: collection's languages, and changes only when a writer upgrades or re-indexes the collection)
UPGRADES_TTL_S = 60.0


def _upgrades(state) -> list[dict]:
    from figsearch.pipeline.upgrade import upgrade_advice

    cached = getattr(state, "_upgrades_cache", None)
    if cached is None or time.monotonic() - cached[0] > UPGRADES_TTL_S:
        cached = (time.monotonic(), [a.as_dict() for a in upgrade_advice(state.collection())])
        state._upgrades_cache = cached
    return cached[1]


def _without_paths(value, root):
    """``value`` (JSON data) with every string's server directories replaced as in error messages."""
    if isinstance(value, str):
        return redact_paths(value, root)
    if isinstance(value, dict):
        return {key: _without_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_paths(item, root) for item in value]
    return value


@router.get("/health", response_model=schemas.HealthOut, responses=error_responses(409, 503), tags=["collection"])
async def health(request: Request) -> schemas.HealthOut:
    """Answers at once, beside running searches, and without the access token: the collection's
    database answered lately (read every half second by a thread of the server's own)."""
    state = _state(request)
    state.health()
    return schemas.HealthOut(status="ok", collection=state.root.name)
