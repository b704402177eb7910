"""Query by example: per-modality nearest neighbours, fusion, hits with explanations."""

from figsearch.search.query import MODES, Filters, Query

__all__ = ["MODES", "Filters", "Query"]
