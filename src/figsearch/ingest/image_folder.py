"""A folder of images (PNG/JPEG/TIFF) with optional sidecar text or JSON per image or patent.

The planner (``figsearch.ingest.plan``) decides which images form one patent: a folder named
by a patent number (``US-12094235-B2/fig0.png``), images named by one
(``USD0534331.png``, ``USD0871717-20200107-D00002.png``), or a sidecar that names it. This
reader turns such a group into a Document: text from sidecars and metadata tables, one
drawing per image (``-D00000`` sheets are front pages), figure keys from the file names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CorruptInput, InputError
from figsearch.ingest import figtext, language
from figsearch.ingest.base import Reader, Unit, readers
from figsearch.ingest.metadata import MetaRecord, read_sidecar
from figsearch.ingest.numbers import find_in_text
from figsearch.records import Document, Failure, FigureRole, Paragraph, Patent, Section, SourceImage

log = logging.getLogger(__name__)

#: sidecar figure descriptions are stored as the brief description of the drawings
_BRIEF = "BRIEF DESCRIPTION OF THE DRAWINGS"


@readers.register("image-folder", help="folders of PNG/JPEG/TIFF images with optional sidecar JSON/TXT")
class ImageFolderReader(Reader):
    name = "image-folder"

    def read(self, unit: Unit) -> Iterator[Document | Failure]:
        options = unit.options
        pub = find_in_text(options["publication"])
        if pub is None:
            raise CorruptInput(f"{unit.source}: {options['publication']!r} is not a publication number")
        meta = MetaRecord()
        failures: list[Failure] = []
        namer = options.get("namer") or str  # failures name a file as the user knows it, even inside an archive
        for path in options.get("folder_sidecars", []):
            try:
                meta.merge(read_sidecar(Path(path)))
            except InputError as exc:
                failures.append(Failure(namer(Path(path)), str(exc)))
        own: dict[str, MetaRecord] = {}
        for key, path in options.get("sidecars", {}).items():
            try:
                own[key] = read_sidecar(Path(path))
            except InputError as exc:
                failures.append(Failure(namer(Path(path)), str(exc)))
                continue
            meta.merge(own[key])
        if options.get("metadata") is not None:
            meta.merge(options["metadata"])
        patent = Patent(
            publication_number=pub.publication_number,
            office=pub.office,
            number=pub.number,
            kind=pub.kind,
            title=meta.title,
            publication_date=meta.date,
            language="en",
            classifications=list(meta.classifications),
            abstract=meta.abstract,
            claims=list(meta.claims),
            source_path=unit.source,
            source_format="image-folder",
        )
        patent.paragraphs = [
            Paragraph(text=t, section=Section.DESCRIPTION, heading=_BRIEF) for t in meta.figure_descriptions
        ] + [Paragraph(text=t, section=Section.DESCRIPTION) for t in meta.paragraphs]
        language.annotate(patent)  # sidecar text does not say its language: the text decides
        images: list[SourceImage] = []
        for key, path in options["images"]:
            role = FigureRole.FRONT_PAGE if key == "D00000" else FigureRole.DRAWING
            image = SourceImage(key=key, path=Path(path), role=role)
            sidecar = own.get(key)
            if sidecar and sidecar.figure_description:
                found = figtext.sentences_of(sidecar.figure_description)
                image.description = sidecar.figure_description
                image.label = found[0].label if found else None
            images.append(image)
        if not any(image.description for image in images):
            figtext.assign(images, figtext.figure_sentences(patent.paragraphs))
        yield from failures
        yield Document(patent=patent, images=images)

