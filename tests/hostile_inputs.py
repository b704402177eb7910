"""Hostile inputs, built on the fly: broken and malicious images, PDFs, XML and archives.

Each case writes its files into its own folder and says what figsearch must do with them:
``failed`` with a reason matching a pattern, ``ingested`` (a damaged but readable file), or
``either`` (a decoder may or may not make sense of the bytes; it must not crash or leak).
Attacks aimed outside the collection point at ``outside``: a folder with a canary file whose
content must never show up in the collection, and where nothing may be written.

    PYTHONPATH=src python tests/hostile_inputs.py     # prints the table of cases and outcomes
"""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest_helpers import drawing, ep_xml, us_xml, write_pdf, write_tiff

CANARY_TEXT = "CANARY-7f3a9c-do-not-read"


@dataclass
class Case:
    name: str
    what: str
    build: Callable[[Path, Path], None]  # (case folder, outside folder)
    expect: str  # "failed", "ingested", "either"
    reason: str = ""  # regex the failure reason must match when failed


CASES: list[Case] = []


def case(name: str, what: str, expect: str, reason: str = ""):
    def register(build):
        CASES.append(Case(name, what, build, expect, reason))
        return build
    return register


def make_outside(root: Path) -> Path:
    """The folder attacks aim at: a canary text and a canary drawing."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "canary.txt").write_text(CANARY_TEXT + "\n")
    write_tiff(root / "canary.tif")
    return root


# -- images ----------------------------------------------------------------------------------

def _tiff_bytes(size=(1200, 1600)) -> bytes:
    buffer = io.BytesIO()
    drawing(size, "FIG. 1").save(buffer, format="TIFF", compression="group4")
    return buffer.getvalue()


def _encoded(fmt: str, size=(800, 1000), **options) -> bytes:
    buffer = io.BytesIO()
    drawing(size, "FIG. 1", mode="L").save(buffer, format=fmt, **options)
    return buffer.getvalue()


@case("tiff-truncated", "G4 TIFF cut in half", "failed", r"truncated|cannot decode|corrupt")
def _(folder: Path, outside: Path) -> None:
    data = _tiff_bytes()
    # Pillow writes the IFD after the strips: half a file loses its header
    (folder / "USD0600001.tif").write_bytes(data[: len(data) // 2])


@case("tiff-bad-ifd", "TIFF whose directory offset points past the end", "failed", r"corrupt|cannot")
def _(folder: Path, outside: Path) -> None:
    data = bytearray(_tiff_bytes())
    data[4:8] = struct.pack("<I", len(data) + 10_000)
    (folder / "USD0600002.tif").write_bytes(bytes(data))


@case("tiff-garbage-strips", "TIFF with its G4 strip overwritten by random bytes", "either", r"cannot decode|corrupt")
def _(folder: Path, outside: Path) -> None:
    data = bytearray(_tiff_bytes())
    rng = random.Random(1)
    for i in range(8, min(len(data) - 200, 4000)):
        data[i] = rng.randrange(256)
    (folder / "USD0600003.tif").write_bytes(bytes(data))


@case("png-truncated", "PNG cut in half", "failed", r"truncated")
def _(folder: Path, outside: Path) -> None:
    data = _encoded("PNG")
    (folder / "USD0600004.png").write_bytes(data[: len(data) // 2])


@case("png-bad-crc", "PNG with flipped bytes in its image data (CRC mismatch)", "failed", r"cannot decode|corrupt")
def _(folder: Path, outside: Path) -> None:
    data = bytearray(_encoded("PNG"))
    start = data.find(b"IDAT") + 20
    for i in range(start, start + 50):
        data[i] ^= 0x5A
    (folder / "USD0600005.png").write_bytes(bytes(data))


@case("jpeg-truncated", "JPEG cut in half", "failed", r"truncated")
def _(folder: Path, outside: Path) -> None:
    data = _encoded("JPEG", quality=80)
    (folder / "USD0600006.jpg").write_bytes(data[: len(data) // 2])


@case("jpeg-garbage", "JPEG header followed by random bytes", "failed", r"cannot decode|corrupt|truncated")
def _(folder: Path, outside: Path) -> None:
    data = _encoded("JPEG", quality=80)
    rng = random.Random(2)
    (folder / "USD0600007.jpg").write_bytes(data[:20] + bytes(rng.randrange(256) for _ in range(3000)))


@case("png-bomb-header", "PNG header claiming 30,000 x 30,000 pixels (tiny file)", "failed",
      r"900 MP exceeds .*decompression bomb")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600008.png").write_bytes(png_bomb(30_000, 30_000, real=False))


@case("png-bomb-real", "real 30,000 x 30,000 1-bit PNG (560 KB, 112 MB of pixels)", "failed",
      r"900 MP exceeds .*decompression bomb")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600009.png").write_bytes(png_bomb(30_000, 30_000, real=True))


@case("tiff-bomb-g4", "G4 TIFF of a blank page claiming 30,000 x 30,000 pixels", "failed",
      r"900 MP exceeds .*decompression bomb")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600010.tif").write_bytes(tiff_claiming(30_000, 30_000))


@case("tiff-many-pages", "TIFF with 600 one-pixel pages", "failed", r"600 pages .*refused")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600011.tif").write_bytes(tiff_pages(600))


@case("zero-bytes", "zero-byte .tif, .png, .pdf, .xml, .zip, .json", "failed", r"empty file \(0 bytes\)")
def _(folder: Path, outside: Path) -> None:
    for name in ("USD0600012.tif", "USD0600013.png", "USD0600014.pdf", "doc.xml", "bulk.zip", "meta.json"):
        (folder / name).write_bytes(b"")


# -- PDFs ------------------------------------------------------------------------------------

@case("pdf-truncated", "design-patent PDF cut in half", "failed", r"PDF|truncated|damaged|cannot")
def _(folder: Path, outside: Path) -> None:
    path = write_pdf(folder / "USD0600015.pdf", pages=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@case("pdf-garbage", "%PDF header followed by random bytes", "failed", r"PDF|damaged|cannot")
def _(folder: Path, outside: Path) -> None:
    rng = random.Random(3)
    (folder / "USD0600016.pdf").write_bytes(b"%PDF-1.7\n" + bytes(rng.randrange(256) for _ in range(5000)))


@case("pdf-bomb-image", "PDF page holding a 30,000 x 30,000 image (Flate, 560 KB)", "failed",
      r"exceeds .*decompression bomb|limit")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600017.pdf").write_bytes(pdf_with_image(30_000, 30_000, extra_text=False))


@case("pdf-bomb-image-rendered", "same, with text on the page so it is rendered, not decoded directly",
      "failed", r"page 1: embedded image: .*900 MP\) exceeds .*decompression bomb")
def _(folder: Path, outside: Path) -> None:
    (folder / "USD0600018.pdf").write_bytes(pdf_with_image(30_000, 30_000, extra_text=True))


@case("pdf-bad-page", "PDF whose second page object is the number 42", "failed", r"damaged PDF")
def _(folder: Path, outside: Path) -> None:
    # found by atheris: pdfium's "Failed to load page." came out as an unexpected error
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>", b"42"]
    (folder / "USD0600041.pdf").write_bytes(_pdf(objects))


# -- XML -------------------------------------------------------------------------------------

def _ep(number: str) -> str:
    return ep_xml(number=number, figures=0)


@case("xml-billion-laughs", "EP XML with nested entity expansion (billion laughs)", "failed",
      r"declares entities.*refused")
def _(folder: Path, outside: Path) -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    body = _ep("1600001").split("\n", 2)[2]
    (folder / "DOC00001.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE ep-patent-document [{entities}]>\n'
        + body.replace("Widget holder", "&lol9;"))


@case("xml-xxe-entity", "XML entity reading a local file (XXE, SYSTEM file://)", "failed",
      r"declares entities.*refused")
def _(folder: Path, outside: Path) -> None:
    body = _ep("1600002").split("\n", 2)[2]
    (folder / "DOC00001.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE ep-patent-document [<!ENTITY xxe SYSTEM "file://{outside}/canary.txt">]>\n'
        + body.replace("Widget holder", "&xxe;"))


@case("xml-xxe-parameter", "XXE through a parameter entity (%p;)", "failed", r"declares entities.*refused")
def _(folder: Path, outside: Path) -> None:
    body = _ep("1600003").split("\n", 2)[2]
    (folder / "DOC00001.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE ep-patent-document [<!ENTITY % p SYSTEM "file://{outside}/canary.txt"> %p;]>\n'
        + body)


@case("xml-external-dtd", "DOCTYPE naming a local DTD that defines the entity used in the title", "either",
      r"malformed|entity")
def _(folder: Path, outside: Path) -> None:
    (outside / "evil.dtd").write_text(f'<!ENTITY title "{CANARY_TEXT}">')
    body = _ep("1600004").split("\n", 2)[2]
    (folder / "DOC00001.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE ep-patent-document SYSTEM "file://{outside}/evil.dtd">\n'
        + body.replace("Widget holder", "&title;"))


@case("xml-xinclude", "XInclude of a local file as text", "ingested")
def _(folder: Path, outside: Path) -> None:
    body = _ep("1600005").split("\n", 2)[2]
    body = body.replace("<ep-patent-document ", '<ep-patent-document xmlns:xi="http://www.w3.org/2001/XInclude" ', 1)
    body = body.replace("A holder (10) for widgets.",
                        f'A holder <xi:include href="file://{outside}/canary.txt" parse="text"/> for widgets.')
    (folder / "DOC00001.xml").write_text('<?xml version="1.0"?>\n' + body)


@case("xml-drawing-outside", "drawings referenced as ../outside/canary.tif and an absolute path", "ingested")
def _(folder: Path, outside: Path) -> None:
    text = ep_xml(number="1600006", figures=2)
    relative = os.path.relpath(outside / "canary.tif", folder)
    text = text.replace('file="imgf0001.tif"', f'file="{relative}"').replace(
        'file="imgf0002.tif"', f'file="{outside}/canary.tif"')
    (folder / "DOC00001.xml").write_text(text)


@case("xml-long-drawing-name", "a drawing named with 300 characters (longer than any file name may be)", "ingested")
def _(folder: Path, outside: Path) -> None:
    # found by atheris: pathlib raised ENAMETOOLONG from is_file() and the whole run stopped
    text = ep_xml(number="1600007", figures=1).replace('file="imgf0001.tif"', f'file="{"é" * 150}.tif"')
    (folder / "DOC00001.xml").write_text(text)


@case("xml-latin1-as-utf8", "XML declared UTF-8 but written in Latin-1", "ingested")
def _(folder: Path, outside: Path) -> None:
    text = us_xml(number="20256000007").replace("Seeding machine", "Sämaschine für Böden")
    (folder / "US20256000007A1-20250626.XML").write_bytes(text.encode("latin-1"))


@case("xml-unknown-encoding", "XML declaring encoding=\"x-klingon\"", "either", r"encoding|malformed")
def _(folder: Path, outside: Path) -> None:
    text = us_xml(number="20256000008").replace('encoding="UTF-8"', 'encoding="x-klingon"')
    (folder / "US20256000008A1-20250626.XML").write_text(text)


@case("xml-utf16-no-bom", "UTF-16 XML without a byte-order mark", "ingested")
def _(folder: Path, outside: Path) -> None:
    text = us_xml(number="20256000009").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    (folder / "US20256000009A1-20250626.XML").write_bytes(text.encode("utf-16-le"))


@case("xml-invalid-bytes", "XML with control and invalid bytes inside the text", "either", r"malformed")
def _(folder: Path, outside: Path) -> None:
    text = us_xml(number="20256000010").encode()
    text = text.replace(b"Seeding machine", b"Seed\x00\x01\xff\xfeing machine")
    (folder / "US20256000010A1-20250626.XML").write_bytes(text)


@case("xml-truncated", "patent XML cut in half", "failed", r"malformed")
def _(folder: Path, outside: Path) -> None:
    text = us_xml(number="20256000011")
    (folder / "US20256000011A1-20250626.XML").write_text(text[: len(text) // 2])


@case("xml-deep", "XML nested 100,000 elements deep", "failed", r"deep|malformed")
def _(folder: Path, outside: Path) -> None:
    (folder / "DOC00001.xml").write_text('<?xml version="1.0"?>\n<ep-patent-document>' + "<p>" * 100_000
                                         + "</p>" * 100_000 + "</ep-patent-document>")


@case("json-deep", "sidecar JSON nested 100,000 deep beside a good drawing", "either", r"JSON")
def _(folder: Path, outside: Path) -> None:
    drawing((300, 400), "FIG. 1", mode="L").save(folder / "USD0600019.png")
    (folder / "USD0600019.json").write_text("[" * 100_000 + "]" * 100_000)


@case("bad-file-name", "a drawing whose file name is not UTF-8", "ingested")
def _(folder: Path, outside: Path) -> None:
    sub = folder / "USD0600020"
    sub.mkdir()
    drawing((300, 400), "FIG. 1", mode="L").save(os.fsencode(sub) + b"/fig\xff\xfe1.png")


@case("fifo", "a named pipe called US1600021B1.xml (reading it would block forever)", "failed",
      r"not a regular file")
def _(folder: Path, outside: Path) -> None:
    os.mkfifo(folder / "US1600021B1.xml")


@case("link-to-device", "a symbolic link USD0600022.png -> /dev/zero", "failed", r"not a regular file")
def _(folder: Path, outside: Path) -> None:
    os.symlink("/dev/zero", folder / "USD0600022.png")


# -- archives --------------------------------------------------------------------------------

def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], method=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for info, data in members:
            archive.writestr(info, data)


def _good_member(number: str) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    drawing((300, 400), "FIG. 1", mode="L").save(buffer, format="PNG")
    return f"{number}.png", buffer.getvalue()


@case("zip-slip", "zip members ../../outside/evil.txt and ..\\..\\evil2.txt beside a good drawing", "failed",
      r"unsafe path .*zip-slip")
def _(folder: Path, outside: Path) -> None:
    up = os.path.relpath(outside, folder)
    _zip(folder / "slip.zip", [(f"../../{up}/evil.txt", b"pwned"), ("..\\..\\evil2.txt", b"pwned"),
                               _good_member("USD0600023")])


@case("zip-absolute", "zip member with an absolute path into the outside folder", "failed", r"unsafe path")
def _(folder: Path, outside: Path) -> None:
    _zip(folder / "abs.zip", [(f"{outside}/evil3.txt", b"pwned")])


@case("zip-symlink", "zip member that is a symbolic link to the canary", "failed", r"symbolic link")
def _(folder: Path, outside: Path) -> None:
    info = zipfile.ZipInfo("USD0600024.png")
    info.external_attr = (0o120777 << 16)
    _zip(folder / "link.zip", [(info, str(outside / "canary.tif").encode())])


@case("tar-link-escape", "tar: a symlink to the outside folder, then a file written through it", "failed",
      r"link in archive|not a patent document")
def _(folder: Path, outside: Path) -> None:
    with tarfile.open(folder / "escape.tar", "w") as archive:
        link = tarfile.TarInfo("sub")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        archive.addfile(link)
        payload = tarfile.TarInfo("sub/evil4.txt")
        payload.size = 5
        archive.addfile(payload, io.BytesIO(b"pwned"))


@case("tar-hardlink", "tar: a hard link to the canary by absolute path", "failed", r"link in archive|unsafe")
def _(folder: Path, outside: Path) -> None:
    with tarfile.open(folder / "hard.tar", "w") as archive:
        link = tarfile.TarInfo("USD0600025.tif")
        link.type, link.linkname = tarfile.LNKTYPE, str(outside / "canary.tif")
        archive.addfile(link)


@case("tar-device", "tar: a character device member", "failed", r"special file")
def _(folder: Path, outside: Path) -> None:
    with tarfile.open(folder / "dev.tar", "w") as archive:
        device = tarfile.TarInfo("USD0600026.png")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 5
        archive.addfile(device)


@case("zip-bomb", "zip member of 24 MB of zeros (24 KB compressed, ratio 1000)", "failed", r"zip bomb")
def _(folder: Path, outside: Path) -> None:
    with zipfile.ZipFile(folder / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("USD0600027.tif", "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(24):
                member.write(block)


@case("gz-bomb", "USD0600028.tif.gz: a TIFF header and 24 MB of zeros, gzipped (24 KB)", "failed", r"zip bomb")
def _(folder: Path, outside: Path) -> None:
    # (zeros alone would be a valid empty tar.gz: tar stops at the first zero block, reading nothing)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = b"\x00" * (1 << 20)
    data = compressor.compress(b"II*\x00") + b"".join(compressor.compress(block) for _ in range(24))
    data += compressor.flush()
    (folder / "USD0600028.tif.gz").write_bytes(data)


@case("zip-nested", "a zip inside a zip, five deep", "failed", r"nested more than 3")
def _(folder: Path, outside: Path) -> None:
    name, data = _good_member("USD0600029")
    for level in range(5):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, data)
        name, data = f"level{level}.zip", buffer.getvalue()
    (folder / "nested.zip").write_bytes(data)


@case("zip-truncated", "zip cut in half", "failed", r"corrupt|truncated|archive")
def _(folder: Path, outside: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(*_good_member(f"USD060003{i}"))
    data = buffer.getvalue()
    (folder / "cut.zip").write_bytes(data[: len(data) // 2])


# -- builders --------------------------------------------------------------------------------

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int, *, real: bool) -> bytes:
    """A 1-bit PNG of ``width`` x ``height``; with ``real`` its pixel data is all there (all white)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if real:
        compressor = zlib.compressobj(1)
        row = b"\x00" + b"\xff" * ((width + 7) // 8)
        parts, batch = [], row * 256
        for _ in range(height // 256):
            parts.append(compressor.compress(batch))
        parts.append(compressor.compress(row * (height % 256)))
        parts.append(compressor.flush())
        idat = b"".join(parts)
    else:
        idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def tiff_claiming(width: int, height: int) -> bytes:
    """A real G4 TIFF of a small blank page whose header claims ``width`` x ``height``."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (64, 64), 1).save(buffer, format="TIFF", compression="group4")
    data = bytearray(buffer.getvalue())
    assert data[:4] == b"II*\x00"
    offset = struct.unpack_from("<I", data, 4)[0]
    (entries,) = struct.unpack_from("<H", data, offset)
    for i in range(entries):
        at = offset + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<H", data, at + 8, value)
            else:
                struct.pack_into("<I", data, at + 8, value)
    return bytes(data)


def tiff_pages(pages: int) -> bytes:
    """An uncompressed 1-bit TIFF of ``pages`` one-pixel pages, written by hand (Pillow takes seconds)."""
    header = bytearray(b"II*\x00" + struct.pack("<I", 8))
    entries = [(256, 3, 1), (257, 3, 1), (258, 3, 1), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
               (278, 3, 1), (279, 4, 1)]
    size = 2 + 12 * len(entries) + 4
    pixel_at = 8 + size * pages
    for page in range(pages):
        header += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            value = pixel_at if tag == 273 else value
            header += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                                             else struct.pack("<I", value))
        header += struct.pack("<I", 8 + size * (page + 1) if page + 1 < pages else 0)
    return bytes(header + b"\x80")


@functools.lru_cache(maxsize=4)
def _white_rows(width: int, height: int) -> bytes:
    compressor = zlib.compressobj(1)
    row = b"\xff" * ((width + 7) // 8)
    batch = row * 256
    stream = b"".join(compressor.compress(batch) for _ in range(height // 256))
    return stream + compressor.compress(row * (height % 256)) + compressor.flush()


def pdf_with_image(width: int, height: int, *, extra_text: bool) -> bytes:
    """A one-page PDF showing one 1-bit Flate image of ``width`` x ``height`` (all white)."""
    stream = _white_rows(width, height)
    content = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    if extra_text:
        content += b" BT /F1 12 Tf 72 72 Td (FIG. 1) Tj ET"
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /XObject << /Im1 5 0 R >> /Font << /F1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(stream)) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1; the first is the catalog) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Root 1 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def build_all(data: Path, outside: Path, cases: list[Case] | None = None) -> dict[str, Path]:
    folders = {}
    for item in cases or CASES:
        folder = data / item.name
        folder.mkdir(parents=True)
        item.build(folder, outside)
        folders[item.name] = folder
    return folders


if __name__ == "__main__":
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_reliability_hostile import outcome_table

    with tempfile.TemporaryDirectory() as tmp:
        print(outcome_table(Path(tmp)))
