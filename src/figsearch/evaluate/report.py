"""The reference-style table (one row per mode, one column per measure) as Markdown and JSON,
and the files an evaluation leaves behind for review: judgments, query set, TREC runs, per-query scores."""

from __future__ import annotations

import json
from pathlib import Path

from figsearch.evaluate.experiment import Comparison, Evaluation
from figsearch.evaluate.qrels import format_qrels
from figsearch.evaluate.runs import format_run
from figsearch.fsutil import atomic_write_bytes


def summary(ev: Evaluation) -> dict[str, dict[str, float]]:
    """``{mode: {measure: mean}}``, measure names as ir_measures writes them (``AP@50``)."""
    return {mode: dict(s.means) for mode, s in ev.scores.modes.items()}


def to_json(ev: Evaluation) -> dict:
    scores = ev.scores
    return {
        "collection": ev.label,
        "judgments": ev.judgments,
        "k": ev.k,
        "queries": len(ev.queries),
        "measures": scores.measures,
        "modes": summary(ev),
        "ci": {
            "level": scores.ci_level,
            "method": "percentile bootstrap over queries, 10000 resamples",
            "intervals": {m: {n: list(ci) for n, ci in s.ci.items()} for m, s in scores.modes.items()},
        },
        "tests": {
            "measure": scores.primary,
            "method": "two-sided paired randomisation (sign-flip) test, Holm-adjusted over all pairs",
            "pairs": [_test_json(t) for t in scores.tests],
        },
        "skipped_modes": ev.runset.skipped,
        "empty_queries": ev.runset.empty,
        "settings": ev.settings,
        "notes": ev.notes,
        "definition": ev.definition,
    }


def comparison_json(cmp: Comparison) -> dict:
    return {
        "A": to_json(cmp.a),
        "B": to_json(cmp.b),
        "tests": {
            "measure": cmp.a.scores.primary,
            "method": "two-sided paired randomisation test of A against B per mode, Holm-adjusted over modes",
            "modes": {mode: _test_json(t) for mode, t in cmp.tests.items()},
        },
    }


def _test_json(t) -> dict:
    return {"a": t.a, "b": t.b, "diff": t.diff, "p": t.p, "p_holm": t.p_holm, "significant": t.significant}


def to_markdown(ev: Evaluation) -> str:
    scores = ev.scores
    primary = scores.primary
    level = int(round(scores.ci_level * 100))
    head = [f"## figsearch evaluation of {ev.label}", ""]
    head.append(f"Judgments: {ev.judgments}; {len(ev.queries)} queries; k = {ev.k}.")
    head.append("")
    columns = [primary, f"{level}% CI"] + scores.measures[1:] + ["queries"]
    lines = ["| mode | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for mode, s in scores.modes.items():
        low, high = s.ci[primary]
        cells = [_f(s.means[primary]), f"{_f(low)}–{_f(high)}"] + [_f(s.means[m]) for m in scores.measures[1:]]
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {len(ev.queries)} |")
    parts = head + lines + [""]
    if scores.tests:
        parts += [
            f"Paired randomisation tests on {primary} (two-sided; p adjusted by Holm over {len(scores.tests)} pairs; "
            "a difference counts only when the adjusted p < 0.05):",
            "",
            "| A | B | A − B | p | p (Holm) | verdict |",
            "|---|---|---:|---:|---:|---|",
        ]
        for t in scores.tests:
            verdict = "A better" if t.significant and t.diff > 0 else "B better" if t.significant else "no significant difference"
            parts.append(f"| {t.a} | {t.b} | {t.diff:+.3f} | {_p(t.p)} | {_p(t.p_holm)} | {verdict} |")
        parts.append("")
    if ev.settings:
        parts += [f"Settings: `{json.dumps(ev.settings, sort_keys=True, default=str)}`", ""]
    parts += [f"Note: {n}" for n in ev.notes]
    parts += ["", f"Definitions: {ev.definition}", ""]
    return "\n".join(parts)


def comparison_markdown(cmp: Comparison) -> str:
    a, b = cmp.a, cmp.b
    primary = a.scores.primary
    parts = [
        "## figsearch comparison",
        "",
        f"A = {a.label}; B = {b.label}. Judgments: {a.judgments}; the same {len(a.queries)} queries; k = {a.k}.",
        "",
    ]
    columns = []
    for measure in a.scores.measures:
        columns += [f"{measure} A", f"{measure} B"]
    header = columns[:2] + ["B − A", "p (Holm)"] + columns[2:]
    parts += ["| mode | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for mode, test in cmp.tests.items():
        ma, mb = a.scores.modes[mode].means, b.scores.modes[mode].means
        gain = mb[primary] - ma[primary] + 0.0  # + 0.0 turns -0.0 into 0.0
        cells = [_f(ma[primary]), _f(mb[primary]), f"{gain:+.3f}", _p(test.p_holm)]
        for measure in a.scores.measures[1:]:
            cells += [_f(ma[measure]), _f(mb[measure])]
        parts.append(f"| {mode} | " + " | ".join(cells) + " |")
    only = sorted(set(a.scores.modes) ^ set(b.scores.modes))
    if only:
        parts += ["", f"Modes evaluated on one side only (see each report): {', '.join(only)}"]
    parts += ["", f"p: two-sided paired randomisation test of A against B on {primary}, Holm-adjusted over modes."]
    parts += [f"Note (A): {n}" for n in a.notes] + [f"Note (B): {n}" for n in b.notes]
    parts += ["", f"Definitions: {a.definition}", ""]
    return "\n".join(parts)


def write(ev: Evaluation, out: Path, *, name: str = "report") -> list[Path]:
    """report.md, report.json, qrels.txt, queries.txt, runs/MODE.run and per_query.tsv under ``out``."""
    written = []

    def put(relative: str, text: str) -> None:
        path = out / relative
        atomic_write_bytes(path, text.encode("utf-8"))
        written.append(path)

    put(f"{name}.md", to_markdown(ev))
    put(f"{name}.json", json.dumps(to_json(ev), indent=2, sort_keys=False) + "\n")
    put("qrels.txt", format_qrels({q: ev.qrels.get(q, {}) for q in ev.queries}))
    put("queries.txt", "".join(q + "\n" for q in ev.queries))
    for mode, run in ev.runset.runs.items():
        put(f"runs/{mode}.run", format_run(run, f"figsearch-{mode}"))
    rows = ["query\tmode\t" + "\t".join(ev.scores.measures)]
    for mode, s in ev.scores.modes.items():
        for q in ev.queries:
            rows.append(f"{q}\t{mode}\t" + "\t".join(f"{s.per_query[m][q]:.6f}" for m in ev.scores.measures))
    put("per_query.tsv", "\n".join(rows) + "\n")
    return written


def write_comparison(cmp: Comparison, out: Path) -> list[Path]:
    written = write(cmp.a, out / "A") + write(cmp.b, out / "B")
    for relative, text in (
        ("comparison.md", comparison_markdown(cmp)),
        ("comparison.json", json.dumps(comparison_json(cmp), indent=2) + "\n"),
    ):
        atomic_write_bytes(out / relative, text.encode("utf-8"))
        written.append(out / relative)
    return written


def _f(value: float) -> str:
    return f"{value:.3f}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"
