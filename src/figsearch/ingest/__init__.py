"""figsearch.ingest: patent documents in, Patent and Figure records (and stored images) out.

Readers register themselves by name on import (``figsearch.ingest.base.readers``), exactly
as a plugin would; ``runner.ingest_paths`` is the entry point for the CLI and the pipeline.
Importing this package is cheap: lxml, Pillow and pypdfium2 load when first used.
"""

from figsearch.ingest import ep_xml, image_folder, pdf, us_xml, us_xml_old  # noqa: F401  (register readers)
from figsearch.ingest.base import Reader, Unit, readers

__all__ = ["Reader", "Unit", "readers", "ingest_paths", "IngestSummary"]


def __getattr__(name: str):
    if name in ("ingest_paths", "IngestSummary"):
        from figsearch.ingest import runner

        return getattr(runner, name)
    raise AttributeError(name)
