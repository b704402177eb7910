"""benchmarks/text_int8_eval.py (stops 23 and 31): the retrieval measures it compares the text models by, its upair
word set, and the nodes its partial quantisations name."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "text_int8_eval.py"
_spec = importlib.util.spec_from_file_location("text_int8_eval", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_ranked_measures_against_a_hand_computation():
    # one query, five items; relevant: items 1 and 3 (and item 4, which ranks past k = 3)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.1]])
    relevant = np.array([[False, True, False, True, True]])
    got = bench.ranked_measures(scores, relevant, k=3)
    # ranked 0, 1, 2: a hit at rank 2 only; AP@3 = (1/2) / 3 relevant (trec_eval divides by all of them)
    assert got["AP@50"][0] == pytest.approx(0.5 / 3)
    assert got["P@10"][0] == pytest.approx(0.1) and got["RR"][0] == pytest.approx(0.5)


def test_ranked_measures_break_ties_by_the_later_item_and_can_leave_the_query_out():
    scores = np.array([[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.2, 0.2, 1.0]])
    relevant = np.array([[False, True, False], [True, False, False], [False, False, False]])
    got = bench.ranked_measures(scores, relevant, exclude_self=True)
    # query 0 ranks 2 before 1 (a tie: the later first), its relevant item at rank 2
    assert got["RR"][0] == pytest.approx(0.5) and got["AP@50"][0] == pytest.approx(0.5)
    assert got["RR"][1] == pytest.approx(0.5)  # the same tie for query 1: item 2, then item 0
    assert got["AP@50"][2] == 0.0  # nothing relevant: 0, not a division by zero
    # retrieval() is the same measure over classes, each query's own item left out
    vectors = np.eye(3, dtype=np.float32)
    by_class = bench.retrieval(vectors, ["a", "a", "b"])
    # query 0: items 1 and 2 tie at 0, item 2 first: its one relevant item at rank 2; query 2's class has no other
    assert by_class["AP@50"][0] == pytest.approx(0.5) and by_class["AP@50"][2] == 0.0


def test_upair_set_queries_labels_that_two_figures_carry(tmp_path):
    folder = tmp_path / "upair-queries" / "sections" / "A" / "A01"
    folder.mkdir(parents=True)
    figures = {
        "X1": {"title": "Shoe", "fig_desc": "FIG. 1 shows a sole", "component_labels": ["Sole", "heel", "ab", ">"]},
        "X2": {"title": "Boot", "fig_desc": "", "component_labels": ["sole ", "lace"]},
        "X3": {"title": "Boot", "fig_desc": "Boot", "component_labels": ["heel", "lace", "strap"]},
    }
    for name, meta in figures.items():
        (folder / f"{name}.json").write_text(json.dumps(meta))
    labels, texts, relevant = bench.upair_set(tmp_path)
    assert labels == ["heel", "lace", "sole"]  # lower-cased, spaces closed; one carrier or < 3 letters: no query
    assert texts == [["FIG. 1 shows a sole", "Shoe"], ["Boot"], ["Boot"]]  # description first, then the title, once
    assert relevant.tolist() == [[True, False, True], [False, True, True], [True, True, False]]


def test_partial_quantisations_name_the_weight_matmuls_of_minilms_export():
    """The node names the partial candidates list are those torch.onnx gives minilm's export (the cached graph):
    a name that matched nothing would quantise nothing, silently."""
    onnx = pytest.importorskip("onnx")
    from figsearch.embed.encoders.text import MiniLMOnnxEncoder, minilm

    encoder = minilm(threads=1)
    if not isinstance(encoder, MiniLMOnnxEncoder):
        pytest.skip("minilm is not running through onnxruntime here")
    graph = onnx.load(str(encoder.graph), load_external_data=False)
    weights = {init.name for init in graph.graph.initializer}
    matmuls = {n.name for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in weights}
    assert matmuls == {name for i in range(6) for name in bench._weights(i)}
    for name, (_, options) in bench.CANDIDATES.items():
        assert set((options or {}).get("nodes_to_quantize", [])) <= matmuls, name


def test_the_rule_names_each_failure_and_passes_a_candidate_within_every_bound():
    fine = {"designs-even": (+0.0011, -0.0003, +0.0025), "upair": (-0.0008, -0.0030, +0.0040)}
    assert bench.rule_failures(0.68, 0.9933, fine, 0.0) == []
    failures = bench.rule_failures(0.90, 0.9899, {"designs-even": (+0.0002, +0.0001, +0.0015),
                                                  "upair": (-0.0012, -0.0059, +0.0034)}, 3.5e-2)
    assert [f.split(" (")[0] for f in failures] == [
        "1", "2 on designs-even", "2 on upair", "3", "a vector depends on its pass"]
    # the bounds themselves pass
    assert bench.rule_failures(0.85, 0.99, {"s": (-0.001, -0.01, 0.0)}, 1e-6) == []
