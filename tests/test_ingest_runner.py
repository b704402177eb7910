"""End-to-end ingest runs on small on-the-fly folders: good and bad documents side by side."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from ingest_helpers import (
    drawing,
    ep_xml,
    us_xml,
    write_empty_pdf,
    write_ep_document,
    write_pdf,
    write_tiff,
    write_us_document,
)

from figsearch.cli import main
from figsearch.ingest import archives
from figsearch.ingest.runner import ingest_paths
from figsearch.records import FigureRole
from figsearch.store import Collection


def run(collection_dir: Path, *paths, jobs=1, **kwargs):
    with Collection.open(collection_dir, create=True) as collection:
        summary = ingest_paths(collection, list(paths), jobs=jobs, **kwargs)
        counts = collection.counts()
        failures = {f.source: f.reason for f in collection.failures()}
    return summary, counts, failures


def png(path: Path, label="FIG. 1", size=(300, 400)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    drawing(size, label, mode="L").save(path)
    return path


@pytest.fixture
def mixed(tmp_path) -> Path:
    """Valid documents of every kind next to one bad file of every kind."""
    root = tmp_path / "data"
    write_us_document(root / "us" / "US20250204297A1-20250626", sheets=2)
    write_ep_document(root / "ep" / "EP1234567A1", figures=2)
    (root / "pdfs").mkdir(parents=True)
    write_pdf(root / "pdfs" / "7-USD0528368.pdf", pages=3)
    write_empty_pdf(root / "pdfs" / "no-pages.pdf")
    folder = root / "figures" / "US-12094235-B2"
    png(folder / "fig0.png")
    png(folder / "fig1.png", "FIG. 2")
    (folder / "fig1.json").write_text(json.dumps({"title": "Drone", "fig_desc": "FIG. 2 is a side view of the drone."}))
    broken = root / "figures" / "US-11111111-B1"
    broken.mkdir(parents=True)
    data = write_tiff(broken / "whole.tif", size=(1200, 1600)).read_bytes()
    (broken / "whole.tif").write_bytes(data[: len(data) // 2])
    (root / "bad").mkdir()
    (root / "bad" / "zero.tif").write_bytes(b"")
    text = us_xml(number="20250000009")
    (root / "bad" / "broken.xml").write_text(text[: len(text) // 2])
    junk = root / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("shopping list: milk, eggs\n")
    (junk / "data.bin").write_bytes(bytes(range(256)) * 4)
    (junk / "config.json").write_text('{"debug": true}')
    (root / "README.md").write_text("about this data")
    return root


def test_bad_files_fail_one_line_each_and_good_ones_go_in(mixed, collection_dir):
    summary, counts, failures = run(collection_dir, mixed)
    assert counts["patents"] == 4  # US app, EP, the PDF, the image folder
    assert summary.documents == 4
    names = {Path(source.split("!")[-1]).name: reason for source, reason in failures.items()}
    assert set(names) == {"no-pages.pdf", "whole.tif", "zero.tif", "broken.xml", "notes.txt", "data.bin",
                          "config.json"}
    assert "no pages" in names["no-pages.pdf"]
    assert "truncated" in names["whole.tif"]
    assert "empty" in names["zero.tif"]
    assert "malformed XML" in names["broken.xml"]
    assert all("not a patent document" in names[n] for n in ("notes.txt", "data.bin", "config.json"))
    assert len(summary.failures) == len(failures) == 7
    assert summary.ignored_files == 1  # README.md

    with Collection.open(collection_dir) as collection:
        us = collection.figures(patent="US20250204297A1")
        assert [(f.figure_id, f.role, f.label) for f in us] == [
            ("US20250204297A1-D00000", FigureRole.FRONT_PAGE, None),
            ("US20250204297A1-D00001", FigureRole.DRAWING, "FIG. 1"),
            ("US20250204297A1-D00002", FigureRole.DRAWING, "FIG. 2")]
        sheet = us[1]
        stored = collection.path(sheet.image_path)
        assert stored.is_file() and collection.path(sheet.thumbnail_path).is_file()
        import hashlib

        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sheet.image_sha256
        assert (sheet.width, sheet.height) == (400, 560)
        pdf = collection.figures(patent="USD0528368S1")
        assert [(f.figure_id, f.role, f.page) for f in pdf] == [
            ("USD0528368S1-p001", FigureRole.FRONT_PAGE, 1), ("USD0528368S1-p002", FigureRole.DRAWING, 2),
            ("USD0528368S1-p003", FigureRole.DRAWING, 3)]
        drone = collection.patent("US12094235B2")
        assert drone.title == "Drone"
        fig1 = collection.figure("US12094235B2-fig1")
        assert (fig1.label, fig1.description) == ("FIG. 2", "FIG. 2 is a side view of the drone.")
        ep = {f.figure_id: f.role for f in collection.figures(patent="EP1234567A1")}
        assert ep["EP1234567A1-af001"] == FigureRole.FRONT_PAGE
        assert ep["EP1234567A1-b0001"] == FigureRole.NON_DRAWING


def test_rerun_gives_same_counts_and_skips_unchanged(mixed, collection_dir):
    first, counts1, failures1 = run(collection_dir, mixed)
    second, counts2, failures2 = run(collection_dir, mixed)
    assert counts1 == counts2 and failures1 == failures2
    assert second.documents == 0 and second.skipped_unchanged == first.units - len(
        [f for f in first.failures if "malformed" in f.reason or "no pages" in f.reason])
    # a changed drawing re-ingests its patent, and only that patent
    sheet = mixed / "us" / "US20250204297A1-20250626" / "US20250204297A1-20250626-D00001.TIF"
    drawing((500, 500), "FIG. 9").convert("1").save(sheet, compression="group4")
    third, counts3, _ = run(collection_dir, mixed)
    assert third.documents == 1 and counts3 == counts1
    with Collection.open(collection_dir) as collection:
        assert collection.figure("US20250204297A1-D00001").width == 500


def test_parallel_run_matches_serial(mixed, tmp_path):
    _, serial, serial_failures = run(tmp_path / "serial", mixed, jobs=1)
    _, parallel, parallel_failures = run(tmp_path / "parallel", mixed, jobs=2)
    assert serial == {**parallel, "collection": serial["collection"]}
    assert serial_failures == parallel_failures


@pytest.mark.parametrize("forked", [False, True], ids=["spawned", "forked by the readers' forkserver"])
def test_one_worker_process_when_asked_keeps_a_crash_to_its_document(tmp_path, collection_dir, monkeypatch, forked):
    """``run_units(..., processes=1)`` (the overlapped build's ingest) runs the units in one worker
    process even for one job: a unit that kills its process fails alone, the others go in (in this
    process, as one job runs them otherwise, the crash would end the run). So too with the worker forked
    by the readers' forkserver, as the overlapped build has it since stop 30."""
    import functools
    import os

    from figsearch.ingest import workers
    from figsearch.pipeline.overlapped import INGEST_PRELOAD
    from figsearch.pipeline.signs import reader_context

    if forked and os.name != "posix":
        pytest.skip("a forkserver is POSIX's")
    for i in range(3):
        png(tmp_path / "in" / f"USD053433{i}.png")
    png(tmp_path / "in" / "poison" / "USD0534339.png")
    monkeypatch.setattr(workers, "process_unit", crash_on_poison)
    context = reader_context(also=INGEST_PRELOAD) if forked else None
    _, counts, failures = run(collection_dir, tmp_path / "in", jobs=1,
                              run_units=functools.partial(workers.run_units, processes=1, context=context))
    assert counts["patents"] == 3
    [(source, reason)] = failures.items()
    assert "poison" in source and "crashed" in reason


def test_workers_forked_by_the_readers_forkserver_are_named_and_live_on(tmp_path, monkeypatch):
    """The overlapped build's ingest worker is forked by the readers' forkserver (``run_units(...,
    context=...)``): its parent process is the server, not the build, so its orphan watch must watch the
    server (watching the build, it took itself for an orphan and left at once, every unit "crashed"), and it
    names itself for the kernel (its command line is the server's). The same worker runs every unit."""
    import os
    import sys

    from figsearch.ingest import workers
    from figsearch.pipeline.overlapped import INGEST_PRELOAD
    from figsearch.pipeline.signs import reader_context

    if os.name != "posix" or not sys.platform.startswith("linux"):
        pytest.skip("a forkserver and /proc/self/comm are Linux's")
    monkeypatch.setattr(workers, "process_unit", where_it_ran)
    context = reader_context(also=INGEST_PRELOAD)
    ran = list(workers.run_units(["a", "b", "c"], str(tmp_path), jobs=1, processes=1, context=context))
    assert [unit for unit, *_ in ran] == ["a", "b", "c"]
    assert {(pid, parent, name) for _, pid, parent, name in ran} == {(ran[0][1], ran[0][2], workers.WORKER_NAME)}
    assert ran[0][2] != os.getpid()  # the forkserver's child
    time.sleep(1.2)  # more than two of the orphan watch's looks: the worker is still there
    ran = list(workers.run_units(["d", "e"], str(tmp_path), jobs=1, processes=1, context=context))
    assert [unit for unit, *_ in ran] == ["d", "e"]


def where_it_ran(unit, root):
    """A process_unit that says which process ran it: (unit, pid, parent pid, the kernel's name of it)."""
    import os
    import time

    time.sleep(0.6)  # longer than one look of the orphan watch
    with open("/proc/self/comm") as comm:
        return unit, os.getpid(), os.getppid(), comm.read().strip()


def test_weekly_bulk_file_is_one_unit_per_document(tmp_path, collection_dir):
    bulk = tmp_path / "ipa250626.xml"
    docs = [us_xml(number=f"2025000000{i}") for i in range(1, 4)]
    docs[1] = docs[1][: len(docs[1]) // 2]  # one damaged document in the middle
    bulk.write_text("".join(docs))
    summary, counts, failures = run(collection_dir, bulk)
    assert counts["patents"] == 2
    assert list(failures) == [f"{bulk}#2"]
    assert summary.missing_images == 6  # drawings named in the XML but not delivered with it


def test_image_folders_sidecars_and_metadata_table(tmp_path, collection_dir):
    root = tmp_path / "designs"
    png(root / "USD0534331.png")
    png(root / "USD0534332.png")
    (root / "metadata.txt").write_text("USD0534331\tD1-121\tPet chew\nUSD0534332\tD2-95\tOutsole for a shoe\n")
    sheets = tmp_path / "labels"
    png(sheets / "USD0871717-20200107-D00002.png")
    png(sheets / "USD0871717-20200107-D00003.png")
    (sheets / "USD0871717-20200107-D00002.json").write_text('[{"DetectedText": "FIG. 2", "Type": "LINE"}]')
    anonymous = tmp_path / "anonymous"
    png(anonymous / "picture.png")
    multi = tmp_path / "scans" / "EP1000000A1"
    multi.mkdir(parents=True)
    write_tiff(multi / "sheets.tif", pages=2)
    summary, counts, failures = run(collection_dir, root, sheets, anonymous, tmp_path / "scans")
    assert summary.metadata_files == 1
    assert list(failures) == [str(anonymous / "picture.png")]
    assert "without a patent number" in failures[str(anonymous / "picture.png")]
    with Collection.open(collection_dir) as collection:
        chew = collection.patent("USD0534331S1")
        assert chew.title == "Pet chew"
        assert [(c.scheme, c.code) for c in chew.classifications] == [("USPC", "D1/121")]
        assert [f.figure_id for f in collection.figures(patent="USD0534331S1")] == ["USD0534331S1-USD0534331"]
        labels = collection.patent("USD0871717S1")
        assert labels.paragraphs == []  # OCR boxes in a sidecar are not patent text
        assert [f.figure_id for f in collection.figures(patent="USD0871717S1")] == [
            "USD0871717S1-D00002", "USD0871717S1-D00003"]
        pages = collection.figures(patent="EP1000000A1")
        assert [(f.figure_id, f.page) for f in pages] == [("EP1000000A1-sheets-p001", 1), ("EP1000000A1-sheets-p002", 2)]


def test_same_patent_from_xml_and_pdf_keeps_both(tmp_path, collection_dir):
    write_us_document(tmp_path / "xml", sheets=2, number="D0909824", kind="S1", root="us-patent-grant",
                      date="20210209", design=True)
    write_pdf(tmp_path / "pdf" / "USD909824.pdf" if (tmp_path / "pdf").mkdir() is None else None, pages=2)
    run(collection_dir, tmp_path / "xml")
    run(collection_dir, tmp_path / "pdf")
    with Collection.open(collection_dir) as collection:
        ids = [f.figure_id for f in collection.figures(patent="USD0909824S1")]
        patent = collection.patent("USD0909824S1")
    assert {"USD0909824S1-D00001", "USD0909824S1-p002"} <= set(ids)
    assert patent.title == "Seeding machine" and patent.source_format == "us-xml"


def test_archives_are_unpacked_safely(tmp_path, collection_dir, monkeypatch):
    monkeypatch.setattr(archives, "MIN_RATIO_BYTES", 1 << 16)
    folder = tmp_path / "src"
    write_us_document(folder, sheets=1)
    outside = tmp_path / "escaped.txt"
    bundle = tmp_path / "bulk.zip"
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"docs/{path.name}")
        archive.writestr("../escaped.txt", "zip-slip")
        archive.writestr("/abs/escaped.txt", "absolute")
        archive.writestr("bomb.bin", b"\0" * (4 << 20))
    summary, counts, failures = run(collection_dir, bundle)
    assert counts["patents"] == 1 and counts["figures"] == 2
    assert not outside.exists()
    reasons = {source.split("!", 1)[1]: reason for source, reason in failures.items()}
    assert "zip-slip" in reasons["../escaped.txt"] and "zip-slip" in reasons["/abs/escaped.txt"]
    assert "zip bomb" in reasons["bomb.bin"]
    with Collection.open(collection_dir) as collection:
        sheet = collection.figure("US20250204297A1-D00001")
        assert sheet.source_file == f"{bundle}!docs/US20250204297A1-20250626-D00001.TIF"
    assert not (collection_dir / archives.SCRATCH).exists()
    again, counts2, failures2 = run(collection_dir, bundle)
    assert counts2 == counts and failures2 == failures
    assert again.documents == 0 and again.skipped_archives == 1  # not even unpacked


def test_nested_tar_gz_with_link(tmp_path, collection_dir):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("EP1234567A1/DOC00001.xml", ep_xml(figures=0))
    outer = tmp_path / "weekly.tar.gz"
    with tarfile.open(outer, "w:gz") as archive:
        archive.add(inner, "week/inner.zip")
        link = tarfile.TarInfo("week/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    summary, counts, failures = run(collection_dir, outer)
    assert counts["patents"] == 1
    assert any("link in archive" in reason for reason in failures.values())


def test_cli_ingest_and_info_json(mixed, collection_dir):
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(mixed), "--collection", str(collection_dir), "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "ingested 4 documents" in result.output
    assert result.output.count("figsearch: failed:") == 7
    strict = runner.invoke(main, ["ingest", str(mixed), "-c", str(collection_dir), "-j", "1", "--strict"])
    assert strict.exit_code == 1
    info = runner.invoke(main, ["info", "--collection", str(collection_dir), "--json"])
    assert info.exit_code == 0
    data = json.loads(info.output)
    assert data["patents"] == 4 and data["failures"] == 7 and data["figures"] > 0
    assert {f["source"].rsplit("/", 1)[-1] for f in data["failed"]} >= {"zero.tif", "no-pages.pdf"}
    missing = runner.invoke(main, ["info", "--collection", str(collection_dir / "nope")])
    assert missing.exit_code == 2 and "no collection" in missing.output


def test_single_files_as_arguments(tmp_path, collection_dir):
    xml = write_us_document(tmp_path / "doc", sheets=1)
    pdf = write_pdf(tmp_path / "USD0528368.pdf", pages=2)
    summary, counts, failures = run(collection_dir, xml, pdf)
    assert counts["patents"] == 2 and not failures
    assert counts["figures"] == 2 + 2


def test_png_of_unknown_patent_with_sidecar_number(tmp_path, collection_dir):
    folder = tmp_path / "mixed"
    png(folder / "a1b2c3.png")
    (folder / "a1b2c3.json").write_text(json.dumps({"publication_number": "US-10006933-B2", "title": "Lamp"}))
    summary, counts, failures = run(collection_dir, folder)
    assert not failures
    with Collection.open(collection_dir) as collection:
        assert collection.patent("US10006933B2").title == "Lamp"
        assert [f.figure_id for f in collection.figures()] == ["US10006933B2-a1b2c3"]


def test_unreadable_data_in_memory_is_not_written_outside(tmp_path, collection_dir):
    # every stored path stays inside the collection directory
    write_us_document(tmp_path / "doc", sheets=1)
    run(collection_dir, tmp_path / "doc")
    with Collection.open(collection_dir) as collection:
        for figure in collection.figures():
            assert collection.path(figure.image_path).is_relative_to(collection_dir.resolve())
    stray = io.BytesIO()
    assert stray.getvalue() == b""


def test_single_bad_image_named_by_its_patent_stays_failed_on_rerun(tmp_path, collection_dir):
    folder = tmp_path / "designs"
    folder.mkdir()
    data = write_tiff(tmp_path / "whole.tif", size=(1200, 1600)).read_bytes()
    (folder / "USD0534331.tif").write_bytes(data[: len(data) // 2])
    png(folder / "USD0534332.png")
    first, counts1, failures1 = run(collection_dir, folder)
    second, counts2, failures2 = run(collection_dir, folder)
    assert list(failures1) == [str(folder / "USD0534331.tif")]
    assert failures2 == failures1 and counts2 == counts1 and counts1["patents"] == 1
    assert second.skipped_unchanged == 2


def test_collection_inside_the_input_is_not_ingested_again(tmp_path):
    write_us_document(tmp_path / "doc", sheets=1)
    collection = tmp_path / "collection"
    first, counts1, _ = run(collection, tmp_path)
    second, counts2, failures = run(collection, tmp_path, force=True)
    assert counts1 == counts2 and counts1["patents"] == 1 and not failures


def test_unwritable_collection_stops_the_run_with_a_clear_error(tmp_path, collection_dir, monkeypatch):
    from figsearch.errors import CollectionError
    from figsearch.store import files  # where ingest's workers write the stored images

    write_us_document(tmp_path / "doc", sheets=1)

    def disk_full(path, data, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "atomic_write_bytes", disk_full)
    with pytest.raises(CollectionError, match="No space left on device"):
        run(collection_dir, tmp_path / "doc")
    with Collection.open(collection_dir) as collection:  # still opens, nothing half-written
        assert collection.counts()["patents"] == 0 and not collection.failures()


def crash_on_poison(unit, root):
    """A process_unit that kills its worker on one file, as a segfaulting decoder would."""
    import os

    from figsearch.ingest.process import process_unit

    if "poison" in unit.source:
        os._exit(139)
    return process_unit(unit, root)


def test_worker_crash_fails_one_document_only(tmp_path, collection_dir, monkeypatch):
    from figsearch.ingest import workers

    for i in range(3):
        png(tmp_path / "in" / f"USD053433{i}.png")
    png(tmp_path / "in" / "poison" / "USD0534339.png")
    monkeypatch.setattr(workers, "process_unit", crash_on_poison)
    summary, counts, failures = run(collection_dir, tmp_path / "in", jobs=2)
    assert counts["patents"] == 3
    [(source, reason)] = failures.items()
    assert "poison" in source and "crashed" in reason
