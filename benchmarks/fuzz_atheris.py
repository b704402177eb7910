"""Coverage-guided fuzzing (atheris / libFuzzer) of what ingest reads: XML documents, images, PDFs.

    pip install atheris        # optional; the CI fuzzing is tests/test_reliability_fuzz.py (hypothesis)
    python benchmarks/fuzz_atheris.py --target xml -- -max_total_time=300 -rss_limit_mb=2048 -timeout=30
    python benchmarks/fuzz_atheris.py --target image -- -max_total_time=300
    python benchmarks/fuzz_atheris.py --target pdf -- -max_total_time=300

Each input is written as a file of the target's kind into an empty folder, which is planned and
processed exactly as ``figsearch ingest`` would (plan_paths, then process_unit per unit). Success
and domain errors (figsearch.errors, recorded as failures) are fine; any other exception, an
"unexpected error" failure (a reader bug), a timeout or a memory blow-up is a finding, which
libFuzzer reports and saves as ``crash-*`` / ``timeout-*`` / ``oom-*``. Seeds are the small
fixtures of the tests plus real files of ../shared/data when FIGSEARCH_SHARED_DATA points there.
A fuzzer, not a benchmark: it reports findings, not timings, so it prints no ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent

with atheris.instrument_imports(include=["figsearch"]):
    from figsearch.errors import FigsearchError
    from figsearch.ingest.plan import plan_paths
    from figsearch.ingest.process import process_unit

def _test_helpers():
    """The tests' document builders (tests/ingest_helpers.py), loaded from their file: seeds only."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ingest_helpers", HERE.parent / "tests" / "ingest_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NAMES = {"xml": "DOC00001.xml", "image": "USD0534331.tif", "pdf": "USD0534331.pdf"}


def seeds(target: str) -> list[bytes]:
    helpers = _test_helpers()
    drawing, ep_xml, us_xml, write_pdf = helpers.drawing, helpers.ep_xml, helpers.us_xml, helpers.write_pdf
    from test_ingest_xml import PAP, PATDOC

    out: list[bytes] = []
    if target == "xml":
        out += [ep_xml(figures=1).encode(), us_xml(sheets=1).encode(), PATDOC.encode(), PAP.encode()]
    elif target == "image":
        for fmt, options in (("TIFF", {"compression": "group4"}), ("PNG", {}), ("JPEG", {"quality": 70})):
            buffer = io.BytesIO()
            image = drawing((200, 280)) if fmt == "TIFF" else drawing((200, 280), mode="L")
            image.save(buffer, format=fmt, **options)
            out.append(buffer.getvalue())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out.append(write_pdf(Path(tmp) / "x.pdf", pages=2).read_bytes())
    shared = os.environ.get("FIGSEARCH_SHARED_DATA")
    if shared:
        pattern = {"xml": "xml-text-only/*/*.xml", "image": "ep-documents/*/imgf000[1-3].tif",
                   "pdf": "us-design-pdfs/*.pdf"}[target]
        for path in sorted(Path(shared).glob(pattern))[:20]:
            if path.stat().st_size < 200_000:
                out.append(path.read_bytes())
    return out


class Harness:
    def __init__(self, target: str) -> None:
        self.name = NAMES[target]
        self.work = Path(tempfile.mkdtemp(prefix="fuzz-atheris-"))

    def __call__(self, data: bytes) -> None:
        folder, root = self.work / "in", self.work / "collection"
        shutil.rmtree(self.work, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / self.name).write_bytes(data)
        try:
            plan = plan_paths([folder])
        except FigsearchError:
            return
        for unit in plan.units:
            result = process_unit(unit, str(root))
            for failure in ([result.fatal] if result.fatal else []) + result.failures:
                if "unexpected error" in failure.reason:
                    raise RuntimeError(f"reader bug: {failure.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(NAMES), required=True)
    parser.add_argument("--corpus", type=Path, help="corpus folder (default: a fresh one with the seeds)")
    args, rest = parser.parse_known_args()
    rest = [a for a in rest if a != "--"]
    argv = [sys.argv[0], *rest]
    if not any(Path(a).is_file() for a in rest if not a.startswith("-")):  # files given: reproduce them
        corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"corpus-{args.target}-"))
        corpus.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(seeds(args.target)):
            (corpus / f"seed-{index:03d}").write_bytes(seed)
        print(f"corpus: {corpus} ({len(list(corpus.iterdir()))} inputs)", flush=True)
        argv.append(str(corpus))
    harness = Harness(args.target)
    atheris.Setup(argv, harness)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
