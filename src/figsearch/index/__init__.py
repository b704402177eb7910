"""FAISS indexes, one per modality, in the collection's ``index/`` directory.

Write side: ``sync_index`` brings an index in line with the stored vectors (append or rebuild);
``choose_plan`` picks the index type. Read side: ``IndexSnapshot`` opens what the last index run
wrote, read-only. FAISS itself is imported only when an index is built or opened.
"""

from figsearch.index.plan import IndexPlan, choose_plan
from figsearch.index.snapshot import IndexSnapshot
from figsearch.index.sync import IndexReport, sync_index

__all__ = ["IndexPlan", "IndexReport", "IndexSnapshot", "choose_plan", "sync_index"]
