"""FAISS indexes, one per modality, in the collection's ``index/`` directory.

``sync_index`` brings an index in line with the stored vectors (append or rebuild);
``open_index`` opens the current one for searching; ``choose_plan`` picks the index type.
FAISS itself is imported only when an index is built or opened.
"""

from figsearch.index.plan import IndexPlan, choose_plan
from figsearch.index.sync import IndexReport, open_index, sync_index

__all__ = ["IndexPlan", "IndexReport", "choose_plan", "open_index", "sync_index"]
