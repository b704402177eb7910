"""figsearch: semantic patent-figure retrieval.

The public Python API (figsearch.api) is loaded on first use, so that ``import figsearch``
stays light (no numpy, torch or FAISS until a name below is used)::

    import figsearch
    figsearch.build(["patents/"], "coll")            # ingest → signs → embed → index
    with figsearch.open("coll") as coll:             # a SearchCollection
        hits = coll.search(text="hinge", k=5).hits
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: the names figsearch.api exports here, loaded when first used (PEP 562)
_API = (
    "BuildReport", "EvaluationResult", "FigureDetails", "Hit", "PatentDetails", "SearchCollection", "SearchResult",
    "build", "open", "remove",
)

if TYPE_CHECKING:
    from figsearch.api import (  # noqa: F401
        EvaluationResult, FigureDetails, Hit, PatentDetails, SearchCollection, SearchResult, build, open, remove,
    )
    from figsearch.pipeline.building import BuildReport  # noqa: F401

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from figsearch import api

        return getattr(api, name)
    raise AttributeError(f"module 'figsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
