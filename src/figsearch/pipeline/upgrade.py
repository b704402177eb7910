"""What a collection built by an older figsearch lacks against today's defaults, and the command that brings it.

A collection keeps what it was built with: its encoders (changing one re-embeds every drawing or text), its
schema until a writer upgrades it, its BM25 table until an index run writes one. Nothing here changes a
collection; ``figsearch info``, ``/api/info`` and ``figsearch serve`` show the advice, each line with its command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from figsearch.store import Collection


@dataclass(frozen=True)
class Advice:
    #: what the collection lacks or differs in, against this figsearch
    what: str
    #: the command that brings it (DIR stands for the collection)
    command: str

    def as_dict(self) -> dict:
        return asdict(self)


def upgrade_advice(collection: Collection) -> list[Advice]:
    """The steps an older collection may take to what this figsearch builds (empty for a current one)."""
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.embed.sheet_context import split_sheet_context
    from figsearch.embed.encoders.multilingual import ENGLISH_MODEL, MULTILINGUAL_MODEL, choose_text_model
    from figsearch.index.settings import NO_TEXT
    from figsearch.ingest.language import collection_language_counts
    from figsearch.store.schema import SCHEMA_VERSION, STEP_SUMMARY, first_upgrade, stored_version

    advice: list[Advice] = []
    db = collection.db
    version = stored_version(db) or 0
    if version < SCHEMA_VERSION:
        missing = "; ".join(STEP_SUMMARY[v] for v in range(version + 1, SCHEMA_VERSION + 1) if v in STEP_SUMMARY)
        advice.append(Advice(f"schema version {version}, this figsearch's is {SCHEMA_VERSION} (adds: {missing}); "
                             "searches read it as it is, the next writer upgrades it in place",
                             "figsearch index -c DIR"))
    # sheets read (OCR) before the schema had a table for their printed words hold none: those read before the
    # collection's upgrade from a version below 3, or every one while a reader still finds it below 3
    upgraded = first_upgrade(db)
    sheets_read = ("SELECT COUNT(*) FROM figures WHERE ocr_done_at IS NOT NULL AND parent_id IS NULL "
                   "AND role IN ('drawing', 'split_sheet')")
    unread = 0
    if version < 3:
        unread = db.execute(sheets_read).fetchone()[0]
    elif upgraded and upgraded[0] < 3:
        unread = db.execute(sheets_read + " AND ocr_done_at < ?", (upgraded[1],)).fetchone()[0]
    if unread:
        advice.append(Advice(f"{unread} sheets were read before figsearch stored the words printed in drawings: "
                             "word queries and the figures' texts miss their words",
                             "figsearch ocr -c DIR --redo, then figsearch index -c DIR"))
    visual = collection.get_setting("visual_encoder") or {}
    text = collection.get_setting("text_encoder") or {}
    if not visual.get("spec"):
        advice.append(Advice("no indexes yet: nothing is searchable", "figsearch index -c DIR"))
        return advice
    spec = visual["spec"]
    if spec != DEFAULT_VISUAL_ENCODER:
        drawings = db.execute("SELECT COUNT(*) FROM figures WHERE role='drawing'").fetchone()[0]
        base, sheet = split_sheet_context(spec)
        default_base, default_sheet = split_sheet_context(DEFAULT_VISUAL_ENCODER)
        if base == default_base and sheet != default_sheet:
            cut = db.execute("SELECT COUNT(DISTINCT parent_id) FROM figures WHERE parent_id IS NOT NULL").fetchone()[0]
            # with no sheet cut yet the switch changes no vector: it only makes later additions' cut figures mixed
            effect = (f"encodes only the {cut} cut sheets" if cut else
                      "no sheet here is cut, so no vector changes: later additions' cut figures are stored mixed")
            advice.append(Advice(
                f"visual encoder {spec}: today's default {DEFAULT_VISUAL_ENCODER} stores a figure cut from a sheet "
                f"mixed with its sheet ({effect})",
                f'figsearch index -c DIR --visual-model "{DEFAULT_VISUAL_ENCODER}"'))
        else:
            advice.append(Advice(
                f"visual encoder {spec} is not today's default {DEFAULT_VISUAL_ENCODER} (switching embeds its "
                f"{drawings} drawings again; the old vectors are kept, so switching back costs nothing)",
                f'figsearch index -c DIR --visual-model "{DEFAULT_VISUAL_ENCODER}"'))
    # IVF indexes built before stop 18 filed appended and built vectors in the list an HNSW search with efSearch 16
    # found (55 % in their nearest list at 10^7); a rebuild files each in its nearest (docs/index-scale.md)
    from figsearch.index.files import index_dir, read_manifest

    for modality, entry in sorted(read_manifest(index_dir(collection.root))["modalities"].items()):
        factory = (entry.get("plan") or {}).get("factory") or ""
        if "HNSW" in factory and not entry.get("assignment"):
            advice.append(Advice(f"the {modality} index ({factory}, {entry.get('count')} vectors) files vectors by "
                                 "an HNSW search with efSearch 16, missing their nearest list for many; since "
                                 "stop 18 a build files each in its nearest", "figsearch index -c DIR --rebuild"))
    if text.get("spec") and text["spec"] != NO_TEXT:
        if not collection.lexical.present():
            advice.append(Advice("no BM25 table of the figures' words (an older figsearch's index run wrote none): "
                                 "word queries use the dense text channel alone", "figsearch index -c DIR"))
        choice = choose_text_model(collection_language_counts(collection).documents)
        if text["spec"] in (ENGLISH_MODEL, MULTILINGUAL_MODEL) and text["spec"] != choice.spec:
            advice.append(Advice(f"text encoder {text['spec']}: the default for its languages is {choice.spec} "
                                 f"({choice.reason})", f"figsearch index -c DIR --text-model {choice.spec}"))
    return advice
