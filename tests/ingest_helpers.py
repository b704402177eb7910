"""Tiny patent documents built on the fly for the ingest tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def drawing(size=(400, 560), label="FIG. 1", mode="1") -> Image.Image:
    """A small line drawing with a box, a circle and a label, like a patent sheet."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((w // 8, h // 8, w * 7 // 8, h // 2), outline=0, width=3)
    draw.ellipse((w // 4, h // 2 + 10, w * 3 // 4, h * 7 // 8), outline=0, width=3)
    draw.text((w // 2 - 20, h - 30), label, fill=0)
    return image.convert(mode) if mode != "L" else image


def write_tiff(path: Path, pages: int = 1, size=(400, 560)) -> Path:
    """A CCITT G4 TIFF (1-bit), multi-page when ``pages`` > 1."""
    frames = [drawing(size, f"FIG. {i + 1}") for i in range(pages)]
    frames[0].save(path, compression="group4", save_all=pages > 1, append_images=frames[1:])
    return path


def ep_xml(number="1234567", kind="A1", figures=2, brief=True, title="Widget holder") -> str:
    drawings = "".join(
        f'<figure id="f{i:04d}" num="{i}"><img id="if{i:04d}" file="imgf{i:04d}.tif" wi="165" he="206" '
        f'img-content="drawing" img-format="tif"/></figure>'
        for i in range(1, figures + 1)
    )
    items = "".join(f"<li>FIG. {i} is a view number {i} of the widget;</li>" for i in range(1, figures + 1))
    brief_part = (
        '<heading id="h0002">BRIEF DESCRIPTION OF THE DRAWINGS</heading>'
        f'<p id="p0002" num="0002"><ul id="ul0001" list-style="none">{items}</ul></p>'
        if brief else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ep-patent-document PUBLIC "-//EPO//EP PATENT DOCUMENT 1.5//EN" "ep-patent-document-v1-5.dtd">
<ep-patent-document id="EP{number}{kind}" lang="en" country="EP" doc-number="{number}" kind="{kind}"
 date-publ="20200115" dtd-version="ep-patent-document-v1-5">
<SDOBI lang="en"><B100><B110>{number}</B110><B130>{kind}</B130><B140><date>20200115</date></B140></B100>
<B200><B210>18161234.5</B210><B220><date>20180301</date></B220></B200>
<B500><B510EP><classification-ipcr sequence="1"><text>B65D  43/02        20060101AFI20200101BHEP</text>
</classification-ipcr></B510EP><B540><B541>de</B541><B542>Widgethalter</B542><B541>en</B541>
<B542>{title}</B542></B540></B500></SDOBI>
<abstract id="abst" lang="en"><p id="pa01" num="0001">A holder (10) for widgets.</p>
<img id="iaf01" file="imgaf001.tif" wi="108" he="86" img-content="drawing" img-format="tif"/></abstract>
<description id="desc" lang="en">
<heading id="h0001">FIELD</heading><p id="p0001" num="0001">The holder 10 has a base 12 &amp; a lid 14.</p>
{brief_part}
<heading id="h0003">DETAILED DESCRIPTION</heading>
<p id="p0003" num="0003">As shown in FIG. 1, the base 12 carries the lid 14.</p>
<p id="p0004" num="0004">A formula <maths id="math0001" num=""><img id="ib0001" file="imgb0001.tif" wi="50" he="10"
 img-content="math" img-format="tif"/></maths> applies.</p>
</description>
<claims id="claims01" lang="en"><claim id="c-en-0001" num="0001"><claim-text>A holder (10).</claim-text></claim>
</claims>
<drawings id="draw" lang="en">{drawings}</drawings>
</ep-patent-document>
"""


def us_xml(number="20250204297", kind="A1", sheets=2, figures=None, root="us-patent-application",
           date="20250626", design=False) -> str:
    figures = sheets if figures is None else figures
    stem = f"US{number}{kind}-{date}"
    drawing_list = "".join(
        f'<figure id="Fig-EMI-D{i:05d}" num="{i:05d}"><img id="EMI-D{i:05d}" file="{stem}-D{i:05d}.TIF" '
        f'img-content="drawing" img-format="tif"/></figure>'
        for i in range(0, sheets + 1)
    )
    briefs = "".join(
        f'<p id="p-{i:04d}" num="{i:04d}"><figref idref="DRAWINGS">FIG. {i}</figref> is a '
        f'{"top" if i % 2 else "side"} view thereof;</p>'
        for i in range(1, figures + 1)
    )
    biblio = "us-bibliographic-data-grant" if root == "us-patent-grant" else "us-bibliographic-data-application"
    classes = (
        "<classification-locarno><edition>13</edition><main-classification>0703</main-classification>"
        "</classification-locarno><classification-national><country>US</country>"
        "<main-classification>D 7654</main-classification></classification-national>"
        if design else
        "<classifications-ipcr><classification-ipcr><section>A</section><class>01</class><subclass>B</subclass>"
        "<main-group>63</main-group><subgroup>32</subgroup></classification-ipcr></classifications-ipcr>"
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE {root} SYSTEM "{root}-v46-2022-02-17.dtd" [ ]>
<{root} lang="EN" dtd-version="v4.6 2022-02-17" file="{stem}.XML" country="US" date-publ="{date}">
<{biblio}><publication-reference><document-id><country>US</country><doc-number>{number}</doc-number>
<kind>{kind}</kind><date>{date}</date></document-id></publication-reference>
<application-reference appl-type="utility"><document-id><country>US</country><doc-number>18976479</doc-number>
<date>20241211</date></document-id></application-reference>
{classes}
<invention-title id="d2e43">Seeding machine</invention-title></{biblio}>
<abstract id="abstract"><p id="p-0001" num="0000">A seeding machine (10) with a frame (30).</p></abstract>
<drawings id="DRAWINGS">{drawing_list}</drawings>
<description id="description">
<heading id="h-0001" level="1">TECHNICAL FIELD</heading>
<p id="p-0002" num="0001">The turbine engine <b>10</b> has a fan <b>12</b>.</p>
<?brief-description-of-drawings description="Brief Description of Drawings" end="lead"?>
<description-of-drawings>{briefs}</description-of-drawings>
<?brief-description-of-drawings description="Brief Description of Drawings" end="tail"?>
<heading id="h-0002" level="1">DETAILED DESCRIPTION</heading>
<p id="p-0100" num="0100">Referring to <figref idref="DRAWINGS">FIG. 1</figref>, the engine 10 turns.</p>
</description>
<claims id="claims"><claim id="CLM-00001" num="00001"><claim-text>1. A seeding machine.</claim-text></claim>
</claims>
</{root}>
"""


def write_us_document(folder: Path, sheets=2, figures=None, **kwargs) -> Path:
    """A USPTO bulk-data style folder: XML plus ``-D000nn.TIF`` sheets (D00000 = front page)."""
    folder.mkdir(parents=True, exist_ok=True)
    number = kwargs.get("number", "20250204297")
    kind = kwargs.get("kind", "A1")
    date = kwargs.get("date", "20250626")
    stem = f"US{number}{kind}-{date}"
    xml = folder / f"{stem}.XML"
    xml.write_text(us_xml(sheets=sheets, figures=figures, **kwargs), encoding="utf-8")
    for i in range(0, sheets + 1):
        write_tiff(folder / f"{stem}-D{i:05d}.TIF")
    return xml


def write_ep_document(folder: Path, figures=2, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    xml = folder / "DOC00001.xml"
    xml.write_text(ep_xml(figures=figures, **kwargs), encoding="utf-8")
    for i in range(1, figures + 1):
        write_tiff(folder / f"imgf{i:04d}.tif")
    write_tiff(folder / "imgaf001.tif")
    drawing((200, 40), "x=1").convert("1").save(folder / "imgb0001.tif", compression="group4")
    return xml


def write_pdf(path: Path, pages: int = 3) -> Path:
    """A PDF with a front page and drawing pages (images only, no text layer)."""
    frames = [drawing((425, 550), f"FIG. {i}", mode="L") for i in range(pages)]
    frames[0].save(path, save_all=True, append_images=frames[1:], resolution=50.0)
    return path


def write_empty_pdf(path: Path) -> Path:
    path.write_bytes(
        b"%PDF-1.7\n1 0 obj\n<</Pages 2 0 R /Type/Catalog>>\nendobj\n2 0 obj\n<</Count 0/Kids[]/Type/Pages>>\n"
        b"endobj\nxref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \ntrailer\n"
        b"<</Root 1 0 R/Size 3>>\nstartxref\n107\n%%EOF\n"
    )
    return path
