"""Query sets, the runner on a deterministic fake service, TREC run files and a whole evaluation."""

from __future__ import annotations

import json

import pytest

from figsearch.errors import InputError, NotFound
from figsearch.evaluate import experiment, report
from figsearch.evaluate.qrels import parse_qrels
from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
from figsearch.evaluate.runs import RunSet, choose_queries, format_run, parse_run, run_modes
from figsearch.store import Collection

from evaluate_fakes import FakeBackend, build_tiny

P1 = ["P1-D1", "P1-D2", "P1-D3", "P1-D3a"]
P2 = ["P2-D1", "P2-D2"]


@pytest.fixture
def tiny_dir(collection_dir):
    return build_tiny(collection_dir)


@pytest.fixture
def judged(tiny_dir):
    with Collection.open(tiny_dir) as c:
        pool = load_pool(c)
        return pool, build_qrels(c, [parse_rule("same-patent")], pool=pool)


# -- query sets ----------------------------------------------------------------------------------


def test_all_queries_are_the_judged_eligible_figures(judged):
    pool, qrels = judged
    assert choose_queries("all", qrels, pool.figures) == sorted(P1 + P2)


def test_sample_is_seeded_and_sorted(judged):
    pool, qrels = judged
    first = choose_queries("sample:3:7", qrels, pool.figures)
    assert first == choose_queries("sample:3:7", qrels, pool.figures)
    assert len(first) == 3 and first == sorted(first) and set(first) <= set(P1 + P2)
    assert len(choose_queries("sample:100:1", qrels, pool.figures)) == 6


def test_query_file(tmp_path, judged):
    pool, qrels = judged
    listed = tmp_path / "queries.txt"
    listed.write_text("# chosen by hand\nP2-D1\nP3-D1  # no other drawing: scores 0\nP2-D1\n")
    assert choose_queries(str(listed), qrels, pool.figures) == ["P2-D1", "P3-D1"]
    listed.write_text("P2-D1\nP1-D0\nXX-1\n")
    with pytest.raises(NotFound, match=r"2 id\(s\) are not eligible .*: P1-D0, XX-1"):
        choose_queries(str(listed), qrels, pool.figures)


def test_empty_query_sets_are_reported(tmp_path, judged):
    pool, _ = judged
    with pytest.raises(InputError, match="query set 'all' is empty: no eligible figure has a relevant item"):
        choose_queries("all", parse_qrels("P1-D1 0 P1-D2 0\n"), pool.figures)
    (tmp_path / "none.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="is empty"):
        choose_queries(str(tmp_path / "none.txt"), {}, pool.figures)
    with pytest.raises(InputError, match="neither all, sample:N:SEED nor an existing file"):
        choose_queries("sample:x", {}, pool.figures)
    with pytest.raises(InputError, match="the query set is empty"):
        run_modes(FakeBackend({}), [], modes=["visual"])


# -- the runner ------------------------------------------------------------------------------------


def test_runner_drops_the_query_its_family_and_ineligible_hits(judged):
    pool, _ = judged
    table = {
        "visual": {
            # itself, a front page, the figure cut from it, then real hits
            "P1-D3": ["P1-D3", "P1-D0", "P1-D3a", "P2-D1", "P1-D1", "P2-F1", "P1-D2", "P3-D1"],
        },
        "max": {"P1-D3": ["P1-D1", "P1-D1", "P1-D2"]},
    }
    backend = FakeBackend(table)
    result = run_modes(backend, ["P1-D3"], modes=["visual", "max"], k=3, never=pool.family, allowed=set(pool.figures))
    assert result.runs["visual"]["P1-D3"] == [("P2-D1", 0.7), ("P1-D1", 0.6), ("P1-D2", 0.4)]
    assert result.runs["max"]["P1-D3"] == [("P1-D1", 1.0), ("P1-D2", 0.8)]  # a duplicate counts once
    assert result.dropped_hits == 3  # the front page, the formula, the duplicate
    # k + the query and its family; never excluding the query's own patent
    first, again = backend.asked[:2]
    assert (first.figure_id, first.mode, first.k, first.exclude_query_patent) == ("P1-D3", "visual", 3 + 2, False)
    # the front page took a place among the first 5: asked again, twice as deep
    assert (again.mode, again.k) == ("visual", 10)
    assert [q.mode for q in backend.asked] == ["visual", "visual", "max"]


def test_unavailable_mode_is_skipped_and_empty_results_counted():
    backend = FakeBackend({"visual": {"P1-D1": ["P1-D2"]}}, unavailable=("text",))
    result = run_modes(backend, ["P1-D1", "P1-D2"], modes=["text", "visual"], k=5)
    assert set(result.runs) == {"visual"}
    assert "no text vectors" in result.skipped["text"]
    assert result.empty == {"visual": 1}


def test_runner_refuses_bad_modes_and_unknown_queries():
    with pytest.raises(InputError, match="unknown mode 'fused'"):
        run_modes(FakeBackend({}), ["P1-D1"], modes=["fused"])
    with pytest.raises(NotFound, match="query figure 'nope' \\(visual\\)"):
        run_modes(FakeBackend({}), ["nope"], modes=["visual"])


def test_trec_run_format_round_trips():
    run = {"q2": [("b", 0.5)], "q1": [("a", 0.9), ("c", 1 / 3)]}
    text = format_run(run, "figsearch-avg")
    assert text.splitlines() == [
        "q1 Q0 a 1 0.9 figsearch-avg",
        "q1 Q0 c 2 0.3333333333333333 figsearch-avg",
        "q2 Q0 b 1 0.5 figsearch-avg",
    ]
    assert parse_run(text) == {"q1": [("a", 0.9), ("c", 1 / 3)], "q2": [("b", 0.5)]}
    with pytest.raises(InputError, match="one word"):
        format_run(run, "two words")
    with pytest.raises(InputError, match="line 1: expected 'qid Q0 docid rank score tag'"):
        parse_run("q1 Q0 a 1\n")


# -- a whole evaluation ------------------------------------------------------------------------------

# visual: perfect except P2-D1, whose only relevant sheet comes third -> AP@3 = 1/3
VISUAL = {q: [q, "P1-D0"] + [d for d in (P1 if q in P1 else P2) if d != q] + ["P3-D1"] for q in P1 + P2}
VISUAL["P2-D1"] = ["P1-D1", "P1-D2", "P2-D2"]


def test_evaluate_end_to_end_with_a_fake_service(tiny_dir, tmp_path):
    backend = FakeBackend({"visual": VISUAL, "avg": {}}, unavailable=("text",))
    ev = experiment.evaluate(
        tiny_dir,
        experiment.Judgments(rules=("same-patent",)),
        k=3,
        modes=["avg", "text", "visual"],
        backend_factory=lambda path: backend,
        samples=500,
    )
    assert backend.closed
    # re-scored on a subset from the same runs: no new search
    asked = len(backend.asked)
    part = experiment.restrict(ev, ["P2-D1", "P2-D2", "not-evaluated"], samples=500)
    assert len(backend.asked) == asked and part.queries == ["P2-D1", "P2-D2"]
    assert part.scores.modes["visual"].means["AP@3"] == pytest.approx((1 + 1 / 3) / 2)
    assert any("2 of 2 queries returned no hit in mode avg" in n for n in part.notes)
    with pytest.raises(InputError, match="none of the 1 given queries"):
        experiment.restrict(ev, ["P3-D1"])
    assert ev.queries == sorted(P1 + P2)
    visual = ev.scores.modes["visual"]
    # P1-D3 and P1-D3a: their other sheet (the family) is dropped, the two real ones found: AP 1
    assert visual.per_query["AP@3"] == {q: 1.0 for q in P1 + ["P2-D2"]} | {"P2-D1": pytest.approx(1 / 3)}
    assert visual.means["AP@3"] == pytest.approx((5 + 1 / 3) / 6)
    assert ev.scores.modes["avg"].means["AP@3"] == 0.0
    assert list(ev.scores.modes) == ["visual", "avg"]  # reference order, text skipped
    assert any("mode text not evaluated" in n for n in ev.notes)
    assert any("6 of 6 queries returned no hit in mode avg" in n for n in ev.notes)
    [test] = ev.scores.tests
    assert (test.a, test.b, test.measure) == ("visual", "avg", "AP@3")
    assert test.diff == pytest.approx((5 + 1 / 3) / 6)

    assert report.summary(ev)["visual"]["AP@3"] == pytest.approx((5 + 1 / 3) / 6)
    assert set(report.summary(ev)["visual"]) == {"AP@3", "P@10", "R@3", "RR", "nDCG@10"}
    table = report.to_markdown(ev)
    assert "| mode | AP@3 | 95% CI | P@10 | R@3 | RR | nDCG@10 | queries |" in table
    assert "| visual | 0.889 |" in table and "| 6 |" in table
    assert "divided by the number of ALL relevant items" in table

    out = tmp_path / "out"
    written = report.write(ev, out)
    assert {p.name for p in written} == {
        "report.md", "report.json", "qrels.txt", "queries.txt", "visual.run", "avg.run", "per_query.tsv"
    }
    saved = json.loads((out / "report.json").read_text())
    assert saved["queries"] == 6 and saved["modes"]["visual"]["AP@3"] == pytest.approx(0.8888888, abs=1e-6)
    assert saved["skipped_modes"]["text"].startswith("no text vectors")
    assert (out / "runs/visual.run").read_text().startswith("P1-D1 Q0 P1-D2 1 0.8 figsearch-visual\n")
    assert (out / "qrels.txt").read_text().startswith("P1-D1 0 P1-D2 1\n")


def test_compare_two_collections(tiny_dir, tmp_path):
    other = build_tiny(tmp_path / "other")
    worse = dict(VISUAL, **{q: [] for q in P1})
    backends = {str(tiny_dir): FakeBackend({"visual": VISUAL}), str(other): FakeBackend({"visual": worse})}
    cmp = experiment.compare(
        tiny_dir, other, experiment.Judgments(rules=("same-patent",)), k=3, modes=["visual"],
        backend_factory=lambda path: backends[str(path)], samples=500,
    )
    assert cmp.a.queries == cmp.b.queries
    test = cmp.tests["visual"]
    assert test.diff == pytest.approx(4 / 6)  # A - B: four P1 queries lost AP 1 each
    table = report.comparison_markdown(cmp)
    assert "| visual | 0.889 | 0.222 | -0.667 |" in table


def test_scores_rising_down_the_ranking_are_flagged():
    class Rising(FakeBackend):
        def search(self, query):
            found = super().search(query)
            for hit in found.hits:
                hit.score = float(hit.rank)
            return found

    result = run_modes(Rising({"avg": {"P1-D1": ["P1-D2", "P1-D3"], "P1-D2": ["P1-D1"]}}), ["P1-D1", "P1-D2"],
                       modes=["avg"], k=5)
    assert result.unordered == {"avg": 1}
    ulp = RunSet(k=5, queries=["q"], runs={"rrf": {"q": [("a", 0.013888888888888888), ("b", 0.01388888888888889)]}})
    assert ulp.unordered == {"rrf": 0}


def test_a_query_the_service_refuses_scores_zero_and_is_counted():
    class NoText(FakeBackend):
        def search(self, query):
            if query.mode == "text" and query.figure_id == "P1-D2":
                raise InputError("figure P1-D2 has no text to search with")
            return super().search(query)

    result = run_modes(NoText({"text": {"P1-D1": ["P1-D2"]}}), ["P1-D1", "P1-D2"], modes=["text"], k=5)
    assert result.runs["text"] == {"P1-D1": [("P1-D2", 1.0)], "P1-D2": []}
    assert result.refused == {"text": {"P1-D2": "figure P1-D2 has no text to search with"}}
    assert result.empty == {"text": 1}
    assert result.restrict(["P1-D1"]).refused == {"text": {}}
