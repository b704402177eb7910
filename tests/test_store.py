import sqlite3

import pytest

from figsearch.errors import CollectionLocked, NotFound
from figsearch.records import Classification, Figure, FigureRole, Paragraph, Patent
from figsearch.store import Collection


def _patent(title="Rotor"):
    return Patent(
        publication_number="EP1234567A1",
        office="EP",
        number="1234567",
        kind="A1",
        title=title,
        classifications=[Classification("IPC", "F03D 1/06")],
        paragraphs=[Paragraph("The rotor blade 12 is mounted on the hub 14.", number="0001")],
    )


def _figures(sha="a"):
    return [
        Figure("EP1234567A1-f0001", "EP1234567A1", label="FIG. 1", image_sha256=sha, sequence=1),
        Figure("EP1234567A1-imgaf001", "EP1234567A1", role=FigureRole.FRONT_PAGE, image_sha256="b"),
    ]


def test_upsert_twice_keeps_one_copy_and_updates(collection_dir):
    with Collection.open(collection_dir, create=True) as c:
        c.upsert_patent(_patent(), _figures())
        c.upsert_patent(_patent(title="Wind rotor"), _figures())
        counts = c.counts()
        assert (counts["patents"], counts["figures"], counts["paragraphs"]) == (1, 2, 1)
        assert c.patent("EP1234567A1").title == "Wind rotor"
        assert c.figure("EP1234567A1-f0001").label == "FIG. 1"
        assert [f.figure_id for f in c.figures(roles=(FigureRole.DRAWING,))] == ["EP1234567A1-f0001"]


def test_changed_image_drops_derived_rows(collection_dir):
    with Collection.open(collection_dir, create=True) as c:
        c.upsert_patent(_patent(), _figures(sha="a"))
        c.db.execute("INSERT INTO reference_signs (figure_id, text, kind) VALUES ('EP1234567A1-f0001', '12', 'numeral')")
        c.upsert_patent(_patent(), _figures(sha="a"))
        assert c.db.execute("SELECT COUNT(*) FROM reference_signs").fetchone()[0] == 1
        c.upsert_patent(_patent(), _figures(sha="changed"))
        assert c.db.execute("SELECT COUNT(*) FROM reference_signs").fetchone()[0] == 0


def test_second_writer_is_refused_but_readers_work(collection_dir):
    with Collection.open(collection_dir, create=True) as writer:
        writer.upsert_patent(_patent(), _figures())
        with pytest.raises(CollectionLocked, match="being written"):
            Collection.open(collection_dir, write=True)
        with Collection.open(collection_dir) as reader:
            assert reader.counts()["patents"] == 1
            with pytest.raises(sqlite3.OperationalError):
                reader.db.execute("DELETE FROM patents")


def test_unknown_ids_and_missing_collection_are_clear(collection_dir):
    with pytest.raises(NotFound, match="no collection"):
        Collection.open(collection_dir)
    with Collection.open(collection_dir, create=True) as c:
        with pytest.raises(NotFound, match="unknown figure id 'nope'"):
            c.figure("nope")
        with pytest.raises(NotFound, match="outside the collection"):
            c.path("../../etc/passwd")
