"""What a collection was indexed with, as the index run stored it in the collection's settings.

Per modality ``{modality}_encoder`` holds {"spec", "key", "identity"} (or {"spec": "none"} when
text was left out), and ``index_factory`` an index-factory string per modality when one was
asked for. The write path (figsearch.pipeline.index) sets them; searches read them to encode
queries with the same encoders.
"""

from __future__ import annotations

from figsearch.store import Collection

NO_TEXT = "none"


def encoder_settings(collection: Collection, modality: str) -> dict | None:
    """{"spec", "key", "identity"} of the encoder a modality was indexed with, or None."""
    settings = collection.get_setting(f"{modality}_encoder")
    return settings if settings and settings.get("spec") != NO_TEXT else None


def factory_setting(collection: Collection, modality: str) -> str | None:
    return (collection.get_setting("index_factory") or {}).get(modality)
