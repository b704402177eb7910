"""Property-based fuzzing of what reads untrusted bytes: the XML readers (EP, US, US before v4)
and image loading, through the same path as an ingest (plan the folder, then process each unit).

Inputs are real small fixtures (built here, and the real files of ../shared/data when present)
mutated by hypothesis: flipped, inserted, deleted, duplicated and truncated bytes, plus XML and
image tokens spliced in. The only allowed outcomes are success or a domain error
(figsearch.errors) recorded as a failure; never another exception, a hang (SIGALRM) or a
large growth of memory. Bounded for CI by max_examples and the alarm, and derandomized so CI
sees the same examples every time. For a longer hunt:

    FIGSEARCH_FUZZ_SCALE=20 FIGSEARCH_FUZZ_RANDOM=1 PYTHONPATH=src pytest -q tests/test_reliability_fuzz.py
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import drawing, ep_xml, us_xml
from test_ingest_xml import PAP, PATDOC

from figsearch.errors import FigsearchError
from figsearch.ingest.plan import plan_paths
from figsearch.ingest.process import process_unit

#: wall-clock seconds one example may take (the machine is shared and slow: generous)
ALARM = 30
#: growth of the process's peak memory allowed over a whole fuzz test
MAX_GROWTH_MB = 600
SCALE = float(os.environ.get("FIGSEARCH_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("FIGSEARCH_FUZZ_RANDOM") == "1"

XML_TOKENS = [b"<", b">", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"]]>", b"<![CDATA[", b"<!--", b"-->", b"\x00",
              b"\xff\xfe", b"\xef\xbb\xbf", b'<?xml version="1.0"?>', b"<!DOCTYPE x [", b'<!ENTITY a "b">', b"&a;",
              b"</", b'"', b"'", b"=", b"FIG. 1", b"<p>", b"</p>", b"<figure>", b'file="x.tif"',
              b'file="../../etc/passwd"', b"<?xml", b"\r\n", b"\xc3\x28"]
IMAGE_TOKENS = [b"\x00" * 4, b"\xff" * 4, b"\xff\xff\x00\x00", b"\x00\x00\x75\x30", b"\x75\x30", b"II*\x00", b"MM\x00*",
                b"IDAT", b"IEND", b"\xff\xd8", b"\xff\xd9", b"\xff\xc0", b"\x01\x00\x03\x00"]


@st.composite
def mutated(draw, data: bytes, tokens: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        size = max(len(out), 1)
        at = draw(st.integers(0, size - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate", "token"]))
        if op == "flip":
            if out:
                out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            chunk = draw(st.binary(min_size=1, max_size=8))
            out[at:at + len(chunk)] = chunk
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del out[at:at + draw(st.integers(1, 256))]
        elif op == "duplicate":
            length = draw(st.integers(1, 512))
            out[at:at] = out[at:at + length]
        elif op == "truncate":
            del out[at:]
        else:
            token = draw(st.sampled_from(tokens))
            if draw(st.booleans()):
                out[at:at] = token
            else:
                out[at:at + len(token)] = token
    return bytes(out)


class _Alarm(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds: int):
    def ring(signum, frame):
        raise _Alarm(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest_bytes(files: dict[str, bytes]) -> list[str]:
    """Plan a folder holding ``files`` and process every unit as an ingest would; failure reasons.

    Raises whatever escapes (which must only ever be a domain error) and fails on an
    'unexpected error' failure, which is how process_unit reports a bug in a reader.
    """
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        folder, root = work / "in", work / "collection"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        with alarm(ALARM):
            plan = plan_paths([folder])
            reasons = [f.reason for f in plan.failures]
            for unit in plan.units:
                result = process_unit(unit, str(root))
                failures = ([result.fatal] if result.fatal else []) + result.failures
                reasons += [f.reason for f in failures]
        bugs = [r for r in reasons if "unexpected error" in r]
        assert not bugs, bugs
        return reasons
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bytes(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


XML_FIXTURES = {
    "ep": ("DOC00001.xml", ep_xml(figures=1).encode()),
    "us-v4": ("US20250204297A1-20250626.XML", us_xml(sheets=1).encode()),
    "us-patdoc": ("USD0435854S1.xml", PATDOC.encode()),
    "us-pap": ("US20010000044A1.xml", PAP.encode()),
}


def image_fixtures() -> dict[str, tuple[str, bytes]]:
    sheet = drawing((200, 280), "FIG. 1")
    return {
        "tiff-g4": ("USD0534331.tif", _bytes(sheet, "TIFF", compression="group4")),
        "tiff-2pages": ("USD0534332.tif", _bytes(sheet, "TIFF", compression="group4", save_all=True,
                                                 append_images=[drawing((200, 280), "FIG. 2")])),
        "png": ("USD0534333.png", _bytes(sheet.convert("L"), "PNG")),
        "jpeg": ("USD0534334.jpg", _bytes(sheet.convert("L"), "JPEG", quality=70)),
    }


def run_fuzz(name: str, data: bytes, tokens: list[bytes], examples: int) -> None:
    start = peak_mb()

    @settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(data, tokens))
    def check(mutant: bytes) -> None:
        try:
            ingest_bytes({name: mutant})
        except FigsearchError:
            pass  # a domain error escaping the plan is still a clear error

    check()
    assert peak_mb() - start < MAX_GROWTH_MB, f"peak memory grew by {peak_mb() - start:.0f} MB"


@pytest.mark.parametrize("kind", sorted(XML_FIXTURES))
def test_fuzz_xml_readers(kind):
    name, data = XML_FIXTURES[kind]
    assert not ingest_bytes({name: data})  # the unmutated fixture reads cleanly
    run_fuzz(name, data, XML_TOKENS, examples=40)


@pytest.mark.parametrize("kind", sorted(image_fixtures()))
def test_fuzz_image_loading(kind):
    name, data = image_fixtures()[kind]
    assert not ingest_bytes({name: data})
    run_fuzz(name, data, IMAGE_TOKENS, examples=25)


REAL = {
    "ep-xml": ("ep-documents/EP1667425A1/DOC00001.xml", "DOC00001.xml", XML_TOKENS),
    "us-xml": ("xml-text-only/us/US20050004437A1.xml", "US20050004437A1.xml", XML_TOKENS),
    "patdoc": ("xml-text-only/us/USD435854S1.xml", "USD435854S1.xml", XML_TOKENS),
    "g4-tiff": ("ep-documents/EP1667425A1/imgf0002.tif", "USD0534335.tif", IMAGE_TOKENS),
    "png": ("us-design-2007/USD0534871.png", "USD0534871.png", IMAGE_TOKENS),
}


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REAL))
def test_fuzz_real_fixtures(shared_data, kind):
    relative, name, tokens = REAL[kind]
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    run_fuzz(name, path.read_bytes(), tokens, examples=15)
