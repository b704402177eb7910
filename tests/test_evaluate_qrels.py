"""Qrels files and the rules that build judgments from a tiny collection (no images needed)."""

from __future__ import annotations

import pytest

from figsearch.errors import EmptyCollection, InputError, NotFound
from figsearch.evaluate.classes import levels, shared_depth
from figsearch.evaluate.qrels import check_ids, format_qrels, parse_qrels, read_qrels, without_self, write_qrels
from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
from figsearch.store import Collection

from evaluate_fakes import build_tiny


@pytest.fixture
def tiny(collection_dir):
    with Collection.open(build_tiny(collection_dir)) as c:
        yield c


# -- files ---------------------------------------------------------------------------------------


def test_parse_and_format_round_trip(tmp_path):
    text = "q1 0 a 2\nq1 0 b 0\n\nq2 0 c 1\n"
    qrels = parse_qrels(text)
    assert qrels == {"q1": {"a": 2, "b": 0}, "q2": {"c": 1}}
    path = tmp_path / "qrels.txt"
    write_qrels(qrels, path)
    assert path.read_text() == "q1 0 a 2\nq1 0 b 0\nq2 0 c 1\n"
    assert read_qrels(path) == qrels
    assert format_qrels(qrels, positive_only=True) == "q1 0 a 2\nq2 0 c 1\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("q1 0 a\n", r"bad\.qrels line 1: expected 4 fields 'qid 0 docid rel', found 3"),
        ("q1 0 a 1\nq1 0 b high\n", r"bad\.qrels line 2: relevance 'high' is not an integer"),
        ("q1 0 a 1\nq1 0 a 2\n", r"bad\.qrels line 2: 'a' is judged twice for query 'q1' \(1 and 2\)"),
        ("q1 Q0 a 1 0.5 run\n", r"line 1: expected 4 fields .* found 6"),
    ],
)
def test_bad_qrels_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.qrels"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_qrels(path)


def test_missing_and_empty_qrels_files(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        read_qrels(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InputError, match="holds no judgments"):
        read_qrels(tmp_path / "empty.txt")


def test_unknown_ids_are_listed():
    qrels = parse_qrels("q1 0 a 1\nq1 0 zz 1\nqx 0 a 1\n")
    with pytest.raises(NotFound, match=r"1 unknown query id\(s\): qx; 1 unknown doc id\(s\): zz"):
        check_ids(qrels, {"q1", "a"}, "qrels file x")
    check_ids(parse_qrels("q1 0 a 1\n"), {"q1", "a"}, "ok")


def test_self_judgments_never_count():
    cleaned, dropped = without_self({"q": {"q": 1, "a": 1, "sheet": 1}}, {"q": {"sheet"}})
    assert cleaned == {"q": {"a": 1}} and dropped == 2


# -- rules -----------------------------------------------------------------------------------------


def test_pool_excludes_front_pages_and_non_drawings(tiny):
    pool = load_pool(tiny)
    assert set(pool.figures) == {"P1-D1", "P1-D2", "P1-D3", "P1-D3a", "P2-D1", "P2-D2", "P3-D1"}
    assert pool.excluded == {"P1-D0", "P2-F1"}
    assert pool.family == {"P1-D3": {"P1-D3a"}, "P1-D3a": {"P1-D3"}}


def test_same_patent_rule(tiny):
    qrels = build_qrels(tiny, [parse_rule("same-patent")])
    assert qrels == {
        "P1-D1": {"P1-D2": 1, "P1-D3": 1, "P1-D3a": 1},
        "P1-D2": {"P1-D1": 1, "P1-D3": 1, "P1-D3a": 1},
        # a sheet and the figure cut from it never judge each other: they share pixels
        "P1-D3": {"P1-D1": 1, "P1-D2": 1},
        "P1-D3a": {"P1-D1": 1, "P1-D2": 1},
        "P2-D1": {"P2-D2": 1},
        "P2-D2": {"P2-D1": 1},
        # P3 has a single drawing: nothing relevant, so it is no query
    }


def test_same_class_rule_is_graded_by_depth(tiny):
    qrels = build_qrels(tiny, [parse_rule("same-class:USPC:1")])
    # same subclass (own patent) = depth 2 -> grade 2; same class D28 only -> grade 1
    assert qrels["P1-D1"] == {"P1-D2": 2, "P1-D3": 2, "P1-D3a": 2, "P2-D1": 1, "P2-D2": 1}
    assert qrels["P2-D2"] == {"P2-D1": 2, "P1-D1": 1, "P1-D2": 1, "P1-D3": 1, "P1-D3a": 1}
    assert "P3-D1" not in qrels
    deep = build_qrels(tiny, [parse_rule("same-class:uspc:2")])
    assert deep["P1-D1"] == {"P1-D2": 1, "P1-D3": 1, "P1-D3a": 1}
    cpc = build_qrels(tiny, [parse_rule("same-class:CPC:4")])
    assert cpc["P2-D1"] == {"P2-D2": 2, "P1-D1": 1, "P1-D2": 1, "P1-D3": 1, "P1-D3a": 1}


def test_rules_combine(tiny):
    rules = [parse_rule("same-patent"), parse_rule("same-class:USPC:1")]
    summed = build_qrels(tiny, rules)
    assert summed["P1-D1"] == {"P1-D2": 3, "P1-D3": 3, "P1-D3a": 3, "P2-D1": 1, "P2-D2": 1}
    assert build_qrels(tiny, rules, combine="max")["P1-D1"]["P1-D2"] == 2
    both = build_qrels(tiny, rules, combine="all")
    assert both["P1-D1"] == {"P1-D2": 1, "P1-D3": 1, "P1-D3a": 1}
    with pytest.raises(InputError, match="unknown combination 'xor'"):
        build_qrels(tiny, rules, combine="xor")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("same-class:XYZ:1", "unknown classification scheme 'XYZ'; choose one of: CPC, IPC, USPC, Locarno"),
        ("same-class:USPC:3", "depth 3 for USPC is out of range; USPC has levels 1..2"),
        ("same-class:USPC", "write same-class:SCHEME:DEPTH"),
        ("same-class:CPC:two", "depth 'two' is not a whole number"),
        ("same-inventor", "unknown rule 'same-inventor'"),
    ],
)
def test_bad_rules(spec, message):
    with pytest.raises(InputError, match=message):
        parse_rule(spec)


def test_rule_on_a_scheme_nobody_has(tiny):
    with pytest.raises(InputError, match="no patent with drawings .* has a Locarno code"):
        build_qrels(tiny, [parse_rule("same-class:Locarno:1")])


def test_empty_collection(collection_dir):
    with Collection.open(collection_dir, create=True) as c:
        with pytest.raises(EmptyCollection, match="holds no drawings"):
            build_qrels(c, [parse_rule("same-patent")])


# -- classification codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, code, expected",
    [
        ("USPC", "D28 47", ("D28", "D28/47")),
        ("USPC", "D 2728", ("D2", "D2/728")),  # USPTO XML: class in three fixed columns
        ("USPC", "D14486", ("D14", "D14/486")),
        ("USPC", "D1-121", ("D1", "D1/121")),
        ("USPC", "D28/047", ("D28", "D28/47")),
        ("CPC", "B26B 21/4068", ("B", "B26", "B26B", "B26B 21", "B26B 21/4068")),
        ("IPC", "A47C0007020000", ("A", "A47", "A47C", "A47C 7", "A47C 7/02")),
        ("CPC", "H04L", ("H", "H04", "H04L")),
        ("Locarno", "2803", ("28", "28-03")),
        ("Locarno", "LOC (13) Cl. 28-03", ("28", "28-03")),
        ("Locarno", "6", ("06",)),
        ("Locarno", "n/a", ()),
    ],
)
def test_classification_levels(scheme, code, expected):
    assert levels(scheme, code) == expected


def test_shared_depth():
    assert shared_depth(levels("CPC", "B26B 21/4068"), levels("CPC", "B26B 21/00")) == 4
    assert shared_depth(levels("USPC", "D28 47"), levels("USPC", "D12-1")) == 0
