"""The embed-and-index stage (``figsearch index``): embed what is new, then bring each modality's index up to date.

The encoders a collection was indexed with are stored in its settings (spec, key and
identity per modality), so that a search encodes its query with the same ones and a later
``index`` run without options keeps them. Changing an encoder keeps the old vectors in the
``embeddings`` table (switching back costs nothing) but builds a new index: indexes never
mix encoders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER, create_text, create_visual, encoder_key
from figsearch.index.plan import DEFAULT_BYTES_PER_VECTOR
from figsearch.index.settings import NO_TEXT, factory_setting
from figsearch.index.sync import IndexReport, IndexRequest, sync_indexes
from figsearch.pipeline.embed import EmbedReport, embed_text, embed_visual, mix_sheet_context, plan_text, plan_visual
from figsearch.embed.encoders.multilingual import text_model_for
from figsearch.ingest.language import collection_language_counts
from figsearch.store import Collection

log = logging.getLogger(__name__)

#: progress(stage, total) -> advance(n); the CLI draws bars with it
ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class UpdateReport:
    embedded: list[EmbedReport] = field(default_factory=list)
    indexes: list[IndexReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _remember(collection: Collection, modality: str, spec: str, encoder) -> None:
    key = encoder_key(encoder)
    collection.set_setting(f"{modality}_encoder", {"spec": spec, "key": key, "identity": encoder.identity})
    collection.register_model(key, modality, {"spec": spec, **encoder.identity})


#: figures left to embed up to which an encoder ``update_collection`` is given is used as it is
#: (loading the default models again costs about 0.5 CPU s; one that runs on one thread is slower
#: on a large remainder than a fresh one on all cores)
LOADED_ENCODER_WORK = 64
#: the sheets a sheet context (``@sheet=``) encodes after an overlapped build on the stream's one-thread encoder
#: (only what the stream left unmixed since stop 28: an interrupted build's sheets, say); more are encoded by a fresh
#: one on the stage's threads (loading it costs about 0.3 CPU s, a few sheets' work)
MIXING_ON_LOADED_ENCODER = 8


def update_collection(
    collection: Collection,
    *,
    visual_model: str | None = None,
    text_model: str | None = None,
    index_factory: str | None = None,
    bytes_per_vector: float = DEFAULT_BYTES_PER_VECTOR,
    progress: ProgressFactory | None = None,
    rebuild: bool = False,
    embedder=None,
    loaded: dict | None = None,
) -> UpdateReport:
    """Embed new/changed drawings with the chosen (or stored, or default) encoders and sync the indexes.

    ``text_model="none"`` leaves text out. ``index_factory`` ("auto" clears an earlier one)
    applies to both modalities and is remembered. ``embedder`` (the Ray build's) computes the
    vectors elsewhere: ``embedder.encoder(modality, spec)`` stands for the encoder (its identity),
    ``embedder.visual(collection, spec, encoder, todo, progress)`` and
    ``embedder.text(collection, spec, encoder, plan, progress)`` return what embed_visual/embed_text do;
    its ``index_shards`` (a ``figsearch.index.shards.ShardExecutor``, or None) adds the vectors of an
    index big enough to be sharded on its workers. ``loaded``: encoders loaded already, by
    (modality, spec) (the overlapped build's, on one thread): used when they have at most
    ``LOADED_ENCODER_WORK`` figures left to embed, instead of loading the model again.
    """
    report = UpdateReport()
    stored_visual = collection.get_setting("visual_encoder")
    stored_text = collection.get_setting("text_encoder")  # {"spec": "none"} once text was left out
    visual_spec = visual_model or (stored_visual or {}).get("spec") or DEFAULT_VISUAL_ENCODER
    report.notes.append(f"visual model {visual_spec}: " + (
        "chosen (--visual-model)" if visual_model else
        "the collection's own (it keeps the encoder it was built with)" if (stored_visual or {}).get("spec") else
        "the default for a new collection"))
    # the default text model follows the collection's languages (minilm for English, else use-multilingual)
    text_choice = text_model_for(text_model, (stored_text or {}).get("spec"),
                                 collection_language_counts(collection).documents)
    text_spec = text_choice.spec
    if text_spec != NO_TEXT:
        report.notes.append(f"text model {text_spec}: {text_choice.reason}")
    if index_factory is not None:
        value = None if index_factory == "auto" else index_factory
        collection.set_setting("index_factory", {"visual": value, "text": value})

    jobs = [("visual", visual_spec, create_visual)]
    if text_spec != NO_TEXT:
        jobs.append(("text", text_spec, create_text))
    else:
        collection.set_setting("text_encoder", {"spec": NO_TEXT})
        report.notes.append("text left out (--text-model none): searches use the drawings only")
    requests, chosen = [], []
    for modality, spec, create in jobs:
        # on Ray the encoder is loaded by the workers only; the driver gets what it records (its identity)
        reuse = (loaded or {}).get((modality, spec)) if embedder is None else None
        encoder = reuse or (create(spec) if embedder is None else embedder.encoder(modality, spec))
        if modality == "visual":
            todo, unchanged = plan_visual(collection, encoder)
            if reuse is not None and len(todo) > LOADED_ENCODER_WORK:
                encoder = create(spec)  # the same vectors, on the threads this stage has to itself
            advance = progress(f"embedding drawings ({spec})", len(todo)) if progress else None
            embedded = (embed_visual(collection, encoder, todo, progress=advance) if embedder is None
                        else embedder.visual(collection, spec, encoder, todo, advance))
            embedded.unchanged = unchanged
            # a sheet context (SPEC@sheet=BETA): the cut figures' stored vectors mixed with their sheets'
            # after an overlapped build's stream, on a fresh encoder with this stage's threads when there is more
            # than a little to encode: the stream's own encoder runs on one thread, and here the cores are free
            embedded.mixed += mix_sheet_context(collection, encoder, lambda: create(spec),
                                               fresh_encoder_above=MIXING_ON_LOADED_ENCODER if encoder is reuse else None)
        else:
            plan = plan_text(collection, encoder)
            if reuse is not None and len(plan[0]) > LOADED_ENCODER_WORK:
                encoder = create(spec)
            advance = progress(f"embedding figure texts ({spec})", len(plan[0])) if progress else None
            embedded = (embed_text(collection, encoder, plan, progress=advance) if embedder is None
                        else embedder.text(collection, spec, encoder, plan, advance))
        report.embedded.append(embedded)
        chosen.append((modality, spec, encoder))
        requests.append(IndexRequest(modality, encoder_key(encoder), encoder.identity, factory_setting(collection, modality)))
    if text_spec != NO_TEXT:  # the words of the same texts, for the text channel's BM25 part (search/lexical.py)
        from figsearch.search import lexical

        report.notes.append(lexical.sync(collection).summary())
    # both indexes are published by one manifest write: a search sees this run's pair or the last one's
    report.indexes = sync_indexes(collection, requests, bytes_per_vector=bytes_per_vector, force=rebuild,
                                  shards=getattr(embedder, "index_shards", None))
    # the encoders are recorded once their indexes are published: a server searching meanwhile encodes its
    # queries with the encoder of the indexes it has (recorded first, a switch of encoder failed every search
    # for as long as the new index took to build)
    for modality, spec, encoder in chosen:
        _remember(collection, modality, spec, encoder)
    return report
