"""Hostile inputs (tests/hostile_inputs.py) in one ingest: a clear per-file error for each, no crash,
the good documents beside them go in, and nothing outside the collection is read or written."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from collection_check import check_consistent, leftovers
from hostile_inputs import CANARY_TEXT, CASES, build_all, make_outside
from ingest_helpers import write_ep_document, write_us_document
from kill_ingest import _env

from figsearch.ingest.runner import ingest_paths
from figsearch.store import Collection

GOOD = {"EP1234567A1", "US20250204297A1"}


@dataclass
class Run:
    root: Path
    data: Path
    outside: Path
    collection: Path
    folders: dict[str, Path]
    failures: dict[str, str]
    patents: dict[str, str]  # publication -> source path
    figures: list[tuple[str, str]]  # (figure id, source file)
    opened: list[tuple[str, object]] = field(default_factory=list)
    before: dict = field(default_factory=dict)


_WATCH: list | None = None


def _audit(event: str, args: tuple) -> None:
    if _WATCH is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _WATCH.append((os.fsdecode(args[0]), args[1] if len(args) > 1 else None))


sys.addaudithook(_audit)


def tree(*roots: Path) -> dict:
    """Every path under ``roots`` with its size and modification time."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                info = os.lstat(path)
                out[path] = (info.st_size, info.st_mtime_ns)
    return out


def ingest_hostile(root: Path) -> Run:
    global _WATCH
    data, outside, collection = root / "data", make_outside(root / "outside"), root / "collection"
    folders = build_all(data, outside)
    write_us_document(data / "good" / "us", sheets=1)
    write_ep_document(data / "good" / "ep", figures=1)
    before = tree(data, outside)
    opened: list = []
    with Collection.open(collection, create=True) as store:
        _WATCH = opened
        try:
            ingest_paths(store, [data], jobs=1)
        finally:
            _WATCH = None
        failures = {f.source: f.reason for f in store.failures()}
        patents = {r[0]: r[1] for r in store.db.execute("SELECT publication_number, source_path FROM patents")}
        figures = [(r[0], r[1]) for r in store.db.execute("SELECT figure_id, source_file FROM figures")]
    return Run(root, data, outside, collection, folders, failures, patents, figures, opened, before)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return ingest_hostile(tmp_path_factory.mktemp("hostile"))


def case_outcome(run: Run, name: str) -> tuple[dict[str, str], list[str]]:
    """Failures and patents that came from one case's folder."""
    prefix = str(run.folders[name]) + os.sep
    failures = {s: r for s, r in run.failures.items() if s.startswith(prefix)}
    patents = [p for p, source in run.patents.items() if (source or "").startswith(prefix)]
    return failures, patents


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_input_gets_a_clear_outcome(run, case):
    failures, patents = case_outcome(run, case.name)
    for source, reason in failures.items():
        assert reason and "Traceback" not in reason and "unexpected error" not in reason, (source, reason)
    if case.expect == "failed":
        assert failures, f"{case.name}: expected a failure, got patents {patents}"
        for source, reason in failures.items():
            assert re.search(case.reason, reason), f"{source}: {reason!r} does not match {case.reason!r}"
    elif case.expect == "ingested":
        assert patents and not failures, (patents, failures)
    else:
        assert failures or patents
        for source, reason in failures.items():
            assert re.search(case.reason, reason), f"{source}: {reason!r} does not match {case.reason!r}"


def test_good_documents_beside_them_go_in(run):
    assert GOOD <= set(run.patents)
    assert check_consistent(run.collection) == []
    assert leftovers(run.collection) == []


def test_nothing_outside_the_collection_is_read(run):
    outside = str(run.outside) + os.sep
    assert not [path for path, _ in run.opened if path.startswith(outside)]
    assert not [f for f in run.figures if "canary" in (f[1] or "")]
    # XXE, XInclude, external DTDs: the canary's text is nowhere in the database
    db = sqlite3.connect(run.collection / "figsearch.sqlite")
    dump = "\n".join(db.iterdump())
    db.close()
    assert CANARY_TEXT not in dump
    assert "pwned" not in dump


def test_nothing_outside_the_collection_is_written(run):
    assert tree(run.data, run.outside) == run.before
    assert not list(run.root.rglob("evil*.txt"))
    collection = str(run.collection) + os.sep
    writes = [(path, mode) for path, mode in run.opened
              if not path.startswith(collection) and _writes(mode)]
    assert writes == []


def _writes(mode) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    if isinstance(mode, int):
        return bool(mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
    return False


@pytest.mark.slow
def test_cli_run_over_hostile_inputs_with_workers(run, tmp_path):
    """The same inputs through `figsearch ingest -j 2`: exit 0, one failure line each, no traceback."""
    done = subprocess.run([sys.executable, "-m", "figsearch", "ingest", str(run.data), "-c", str(tmp_path / "c"),
                           "-j", "2", "--skip-ocr"], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with Collection.open(tmp_path / "c") as store:
        failures = {f.source: f.reason for f in store.failures()}
        assert failures == run.failures
        assert set(store.patent_numbers()) == set(run.patents)
    for source in failures:
        assert f"figsearch: failed: {source}: " in done.stderr


def outcome_table(root: Path) -> str:
    """Markdown: each hostile input, what figsearch did, whether anything was lost."""
    run = ingest_hostile(root)
    rows = ["| input | expected | what figsearch did | good documents kept |", "|---|---|---|---|"]
    kept = "yes" if GOOD <= set(run.patents) and not check_consistent(run.collection) else "NO"
    for case in CASES:
        failures, patents = case_outcome(run, case.name)
        did = "; ".join(f"failed `{Path(s.split('!')[0]).name}{'!' + s.split('!', 1)[1] if '!' in s else ''}`: "
                        f"{r}" for s, r in sorted(failures.items()))
        if patents:
            did = (did + "; " if did else "") + f"ingested {', '.join(sorted(patents))}"
        did = " ".join(did.replace(str(root), "TMP").replace("|", "/").split())
        rows.append(f"| {case.what} | {case.expect} | {did} | {kept} |")
    outside = str(run.outside) + os.sep
    rows.append("")
    rows.append(f"opens under the outside folder: {sum(p.startswith(outside) for p, _ in run.opened)}; "
                f"canary text in the database: {CANARY_TEXT in chr(10).join(sqlite3.connect(run.collection / 'figsearch.sqlite').iterdump())}; "
                f"files changed outside the collection: {tree(run.data, run.outside) != run.before}")
    return "\n".join(rows)
