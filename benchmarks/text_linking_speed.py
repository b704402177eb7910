"""The build's text work on long descriptions, this tree against another, in the same run.

    python benchmarks/text_linking_speed.py --baseline OTHER_TREE [--patents N] [--sentences N] [--rounds R]

The data: the description sentences of the XML patents of ``../shared/data``: ``us-applications`` and
``ep-documents`` (the 4 documents of the US-application/EP build), then ``xml-text-only`` (EP, then US;
those that the EP and US v4 readers parse, German and French among them): the first ``--patents``
files, at most ``--sentences`` distinct sentences each, plus the title. Each tree runs in its own
process (``PYTHONPATH`` = its ``src``), alternating which goes first in each round, and measures its
own CPU time (``resource.getrusage``, one thread: ``threads=1``, as the overlapped build's writer runs
it) for:

- ``text``: ``PatentText.of`` of each patent (its description split into sentences, their mentions of
  reference signs, the brief descriptions and label references), as the writer makes it per patent;
- ``minilm``: the sentences of each patent in one ``encode`` call, as the build's writer encodes a
  patent's linked sentences (``figsearch.pipeline.overlapped``);
- ``links``: ``PatentText.links`` for 20 seeded sets of numerals per patent (signs the description
  uses, and numerals it does not), as the writer links each drawing it reads;
- ``glossary``: the patent's glossary, as the writer stores it with the sentences.

Then it says whether the two trees gave the same vectors (bit for bit, and the largest difference),
the same links, the same glossaries and the same sentences, mentions, brief descriptions and label
references.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_WORKER = r"""
import inspect, json, pickle, random, resource, sys
import numpy as np
from pathlib import Path
from figsearch.embed.catalog import create_text
from figsearch.ingest import xmlsafe
from figsearch.ingest.ep_xml import parse_document as ep
from figsearch.ingest.us_xml import parse_document as us
from figsearch.link.glossary import glossary
from figsearch.link.patent_text import PatentText
from figsearch.records import ReferenceSign

files, limit, out = json.loads(sys.argv[1])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
texts, groups = [], []
text_cpu = 0.0
for path in map(Path, files):
    try:
        root = xmlsafe.parse(path.read_bytes(), str(path))
        patent = (ep if root.tag == "ep-patent-document" else us)(root, str(path), path.parent).patent
    except Exception:
        continue
    start = cpu()
    text = PatentText.of(patent)
    text_cpu += cpu() - start
    texts.append((patent.publication_number, text))
    group = list(dict.fromkeys(s.text.strip() for s in text.sentences if s.text.strip()))[:limit]
    groups.append(group + [patent.title or "untitled"])
encoder = create_text("minilm", threads=1)
encoder.encode(["warm up"])
start = cpu()
vectors = np.concatenate([encoder.encode(group) for group in groups])
encode_cpu = cpu() - start
rng = random.Random(0)
sign_sets = []
for _, text in texts:
    vocabulary = sorted(text.vocabulary) or ["1"]
    for _ in range(20):
        chosen = rng.sample(vocabulary, min(len(vocabulary), rng.randint(1, 30)))
        chosen += [str(rng.randint(1, 400)) + rng.choice(["", "a", "'"]) for _ in range(5)]
        sign_sets.append([ReferenceSign(s, "numeral", None, 90) for s in chosen])
start = cpu()
links = [text.links(None, signs) for k, (_, text) in enumerate(texts) for signs in sign_sets[20 * k: 20 * k + 20]]
links_cpu = cpu() - start
start = cpu()
takes_mentions = "mentions" in inspect.signature(glossary).parameters
glossaries = [glossary(number, text.sentences, text.lang, *([text.mentions] if takes_mentions else []))
              for number, text in texts]
glossary_cpu = cpu() - start
np.save(out + ".npy", vectors)
with open(out + ".pkl", "wb") as f:
    pickle.dump((links, glossaries, [([s.text for s in text.sentences], text.mentions, text.brief, text.label_refs)
                                     for _, text in texts]), f)
print(json.dumps({"patents": len(groups), "sentences": len(vectors), "text": text_cpu, "minilm": encode_cpu, "links": links_cpu,
                  "glossary": glossary_cpu, "link_lists": len(links), "linked": sum(map(len, links))}))
"""


def files(data: Path, patents: int) -> list[str]:
    found = sorted((data / "us-applications").glob("*/*.XML")) + sorted((data / "ep-documents").glob("*/*.xml"))
    found += sorted((data / "xml-text-only" / "ep").glob("*.xml")) + sorted((data / "xml-text-only" / "us").glob("*.xml"))
    if not found:
        sys.exit(f"no XML patents under {data}/xml-text-only, us-applications or ep-documents")
    return [str(p) for p in found[:patents]]


def run(src: Path, paths: list[str], limit: int, out: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run([sys.executable, "-c", _WORKER, json.dumps([paths, limit, out])], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the run with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import pickle

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other source tree (its src/ is used)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    parser.add_argument("--patents", type=int, default=30)
    parser.add_argument("--sentences", type=int, default=150, help="distinct sentences per patent at most")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    paths = files(args.data, args.patents)
    trees = {"this tree": Path(__file__).resolve().parent.parent / "src", "baseline": args.baseline.resolve() / "src"}
    scratch = tempfile.mkdtemp(prefix="figsearch-text-bench-")
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
        for name in order:
            load = os.getloadavg()[0]
            result = run(trees[name], paths, args.sentences, f"{scratch}/{name.replace(' ', '-')}")
            result["load"] = (load, os.getloadavg()[0])
            results[name].append(result)
            print(f"round {round_ + 1} {name}: {result['patents']} patents, {result['sentences']} sentences: CPU s "
                  f"sentences and mentions {result['text']:.3f}, minilm {result['minilm']:.2f}, links {result['links']:.3f} ({result['link_lists']} sign sets, "
                  f"{result['linked']} links), glossary {result['glossary']:.3f}; load {load:.1f} → {result['load'][1]:.1f}",
                  flush=True)
    for part in ("text", "minilm", "links", "glossary"):
        mine = statistics.median(r[part] for r in results["this tree"])
        base = statistics.median(r[part] for r in results["baseline"])
        print(f"{part}, median of {args.rounds}: this tree {mine:.3f} CPU s, baseline {base:.3f} "
              f"({mine / max(base, 1e-9):.3f}x)")
    a, b = np.load(f"{scratch}/this-tree.npy"), np.load(f"{scratch}/baseline.npy")
    print(f"vectors: {int((a == b).all(axis=1).sum())} of {len(a)} identical bit for bit, largest difference "
          f"{float(np.abs(a - b).max()):.1e}")
    with open(f"{scratch}/this-tree.pkl", "rb") as f:
        mine_links, mine_glossaries, mine_texts = pickle.load(f)
    with open(f"{scratch}/baseline.pkl", "rb") as f:
        base_links, base_glossaries, base_texts = pickle.load(f)
    print(f"links: {'identical' if mine_links == base_links else 'DIFFERENT'}; "
          f"glossaries: {'identical' if mine_glossaries == base_glossaries else 'DIFFERENT'}; "
          f"sentences, mentions, brief descriptions, label references: "
          f"{'identical' if mine_texts == base_texts else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
