"""The collection store: one directory holds everything about a searchable collection.

Layout::

    COLLECTION/
      figsearch.sqlite      patents, paragraphs, figures, failures, signs, sentences,
                            glossary, stored vectors, models and settings used
      images/PUB/KEY.png    normalised drawing (grey, bounded size)
      thumbs/PUB/KEY.png    thumbnail for display
      index/                FAISS indexes and their manifest (written by figsearch.index)
      .writer.lock          held by the one process allowed to write
      .tmp/                 files being written (renamed into place when complete) and archive
                            scratch; whatever a killed writer left there is removed by the next one

Modules: ``connection`` (SQLite and the writer lock), ``schema`` (versions and migrations),
``files`` (PNG storage), and one repository per table group: ``patents`` (patents,
classifications, paragraphs, figures), ``ledger`` (sources and failures), ``settings``
(settings and the model registry), ``signs`` (what OCR read), ``links`` (sentences, glossary,
figure links), ``vectors`` (stored embeddings), ``words`` (the words printed in drawings),
``lexical`` (each figure's text as an FTS5 table, for BM25). No other package writes SQL.
"""

from figsearch.store.collection import DB_NAME, Collection
from figsearch.store.connection import LOCK_NAME, WriterLock
from figsearch.store.files import TMP_DIR, png_relpath
from figsearch.store.schema import SCHEMA_VERSION
from figsearch.store.vectors import MODALITIES

__all__ = ["DB_NAME", "LOCK_NAME", "MODALITIES", "SCHEMA_VERSION", "TMP_DIR", "Collection", "WriterLock", "png_relpath"]
