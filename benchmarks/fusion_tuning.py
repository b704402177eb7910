"""Choosing fusion and re-ranking settings on TRAINING-side collections, fast, without the service.

Replays what ``figsearch evaluate`` does for every query figure (the service's candidate lists:
the best ``max(4 * ask, 100)`` figures of each modality, the union filled with exact cosines from
the stored vectors, then :func:`figsearch.search.fusion.fuse`) from the stored vectors with one
matrix product per modality, so that a grid of settings costs seconds. AP@k follows trec_eval
(divided by all relevant items). The numbers are for choosing settings only; reported numbers
come from ``figsearch evaluate``. Mode ``auto`` gets the collection's visual encoder calibration
(``fusion.near_thresholds``) as the service passes it; when that encoder has one, the rule without
it is printed beside it as ``auto-uncalibrated``.

Protocol: run it only on training-side data — the even-numbered 2007 designs
(``benchmarks/class_level_eval.py --parity even``) and, for same-patent, the shared-data collection
restricted to queries that are not design grants (``--skip-source us-design-grants``). Never on
``us-design-grants`` queries or odd-numbered 2007 designs.

Usage::

    python benchmarks/fusion_tuning.py COLLECTION --rule same-class:USPC:1 \\
        [--skip-source DIR ...] [--only-source DIR ...] [--query-patents FILE] [-k 50] \\
        [--modes text,visual,avg,auto] [--calibration 0.55,0.4 ...] [--rerank Q,D,ALPHA ...]

Calibrating ``auto`` for a visual model (its ``near``/``far`` entry in
``src/figsearch/search/fusion_calibration.json``, keyed ``NAME@SHA256[:16]`` of the model file; for a spec
with a sheet context, ``SPEC@sheet=BETA``, the key ``NAME@SHA256[:16]@sheet=BETA``, written only when the model
file's entry, which such an index uses otherwise, fails the rule on these sets or the chosen triple gains more
than ``--noise`` over it: :func:`inherited_holds`, stop 28)::

    python benchmarks/fusion_tuning.py --calibrate --visual-model backbone:FILE.onnx \\
        [--data ../shared/data] [--work /tmp/figsearch-calibrate] [--reuse] \\
        --held-out-2007 FILE [--held-out FILE] [--set PATH,RULE[,source=DIR][,patents=FILE][,name=N][,held-out=yes] ...] \\
        [--noise 0.001] [--calibrate-rerank default|off|SPEC] [--write]

builds (or with ``--reuse`` reuses) the training-side collections under WORK — the even-numbered
2007 designs (class level, ``benchmarks/class_level_eval.py``'s collection) and the
``us-design-pdfs`` ingested without OCR (same-patent) — indexes a copy of each with the model, adds
every ``--set`` (an existing collection: re-indexed in a copy when its visual model differs;
``source=`` keeps only the queries of patents read from that folder, ``patents=`` only those
listed), and the held-out patents of the model's training (``--held-out-2007``: class-validation
designs, twice — among all even designs, and among themselves only, so that no drawing in the lists
was trained on, as on the odd evaluation designs (stop 20); ``--held-out``: held-out patents) as sets
of their own. It then replays every set once (per query: the visual head's nearness, the two lists'
agreement and the AP@k of ``avg``, text-only z-scores and the uncalibrated rule) and tries every
triple on the grid — ``near``, ``far``, and ``near_agree``, the agreement the switch to ``avg`` also
needs (stop 20) — choosing by the rule in
:func:`choose` (the lead's rule of 2026-11-29, stop 18): **only the held-out sets count** — the
``--held-out-2007`` and ``--held-out`` sets and every ``--set`` marked ``held-out=yes`` (drawings the
model was not trained on); the sets of trained-on drawings are printed, never counted. A pair is
admissible when on every held-out set ``auto`` is at least the best single channel and at most
``--noise`` (0.001) below the uncalibrated rule; among those, the highest mean ``auto`` over the
held-out sets, unless it gains at most ``--noise`` over the uncalibrated rule (then no thresholds). When none is admissible it refuses (exit status 2, nothing written). A held-out
class-level set (``--held-out-2007``, titles as text) is required, so ``auto`` >= text at class level
is checked at calibration time; a set with design-grant or odd-numbered 2007 queries is refused.
It prints per set ``auto`` against the best single channel and, with ``--write``, stores the entry.
The replay ranks ``auto`` as the service does by default: since stop 22 its visual list re-ranked
(``query.rerank_by_default("auto")``), the switch reading the visual head before re-ranking
(``fusion.switch_head``); ``--calibrate-rerank off`` (or a spec) replays it otherwise.

``--service-timing N`` (with a COLLECTION) times N searches through the search service with the
re-ranking off and on, alternating, and prints both medians, their difference and the load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from figsearch.evaluate.rules import build_qrels, load_pool, parse_rule
from figsearch.index.settings import encoder_settings
from figsearch.search import fusion, rerank
from figsearch.store import Collection


def load(collection: Collection, modality: str, allowed: set[str]):
    settings = encoder_settings(collection, modality)
    if settings is None:
        return [], np.zeros((0, 1), np.float32)
    ids, parts = [], []
    for chunk_ids, vectors, _ in collection.vectors.iterate(modality, settings["key"]):
        keep = [i for i, f in enumerate(chunk_ids) if f in allowed]
        ids += [chunk_ids[i] for i in keep]
        parts.append(vectors[keep])
    return ids, np.vstack(parts) if parts else np.zeros((0, 1), np.float32)


def number(publication: str) -> str:
    """A publication number without its kind code (``USD0534334S1`` -> ``USD0534334``), for matching lists."""
    return re.sub(r"(?<=\d)[A-Z]\d?$", "", publication.strip())


def read_patents(path: Path) -> set[str]:
    """Publication numbers, one a line (``#`` comments), kind codes dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {number(line) for line in lines if line}


def ap_at(ranked: list[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


class Replay:
    """Per query, the service's candidate lists and the exact scores of the union."""

    def __init__(self, path: Path, rule: str, k: int, skip_sources: list[Path],
                 only_sources: list[Path] | None = None, query_patents: set[str] | None = None,
                 candidate_patents: set[str] | None = None) -> None:
        """``candidate_patents``: search among the figures of these patents only (queries and relevant ones
        included), e.g. a model's held-out designs among themselves: no drawing of the set was trained on."""
        with Collection.open(path) as c:
            pool = load_pool(c)
            qrels = build_qrels(c, [parse_rule(rule)], pool=pool)
            skipped = set()
            self.sources = c.patents.source_paths()
            for publication, source in self.sources.items():
                inside = lambda dirs: source and any(Path(source).resolve().is_relative_to(s.resolve()) for s in dirs)  # noqa: E731
                if inside(skip_sources) or (only_sources and not inside(only_sources)):
                    skipped.add(publication)
                if query_patents is not None and number(publication) not in query_patents:
                    skipped.add(publication)
            allowed = {f for f, figure in pool.figures.items()
                       if candidate_patents is None or number(figure.patent) in candidate_patents}
            self.vids, self.V = load(c, "visual", allowed)
            visual = encoder_settings(c, "visual") or {}
            self.visual_name = (visual.get("identity") or {}).get("name") or visual.get("spec")
            self.visual_model = (visual.get("identity") or {}).get("model_sha256")
            # an index of cut figures mixed with their sheets (``@sheet=BETA``, stop 27) has a calibration key of its own
            self.visual_sheet = float((visual.get("identity") or {}).get("sheet_context") or 0.0)
            self.tids, self.T = load(c, "text", allowed)
        self.k = k
        self.pool = pool
        self.qrels = {q: {d for d, g in r.items() if g >= 1 and d in allowed} for q, r in qrels.items()
                      if pool.figures[q].patent not in skipped and q in allowed}
        self.queries = sorted(q for q in self.qrels if self.qrels[q])
        self.vrow = {f: i for i, f in enumerate(self.vids)}
        self.trow = {f: i for i, f in enumerate(self.tids)}
        print(f"{path}: {len(self.queries)} queries, {len(self.vids)} visual and {len(self.tids)} text vectors",
              file=sys.stderr)

    def lists(self, q: str):
        skip = self.pool.others(q)
        length = max(4 * (self.k + len(skip)), 100)
        out, qvec = {}, {}
        for modality, ids, matrix, row in (("visual", self.vids, self.V, self.vrow), ("text", self.tids, self.T, self.trow)):
            if q not in row:
                continue
            vector = matrix[row[q]]
            scores = matrix @ vector
            order = np.argsort(-scores, kind="stable")
            top = [(ids[i], float(scores[i])) for i in order[: length + len(skip)] if ids[i] not in skip][:length]
            out[modality] = top
            qvec[modality] = (vector, scores)
        exact = {}
        if len(out) == 2:
            union = {f for c in out.values() for f, _ in c}
            for modality, row in (("visual", self.vrow), ("text", self.trow)):
                listed = {f for f, _ in out[modality]}
                scores = qvec[modality][1]
                exact[modality] = {f: float(scores[row[f]]) for f in union - listed if f in row}
        return out, exact

    def visual_vectors(self, ids):
        return np.stack([self.V[self.vrow[f]] for f in ids])


#: seconds spent in rerank.rerank_visual by the last evaluate() (the re-ranking's own cost)
RERANK_SECONDS = [0.0]


def evaluate(replay: Replay, settings: list[tuple[str, dict]], rr: dict | None = None) -> dict[str, float]:
    totals = {name: 0.0 for name, _ in settings}
    RERANK_SECONDS[0] = 0.0
    for q in replay.queries:
        lists, exact = replay.lists(q)
        head = None
        if rr is not None and "visual" in lists:
            head = fusion.switch_head(lists) if len(lists) == 2 else None  # as the service: auto's switch, plain
            fetch = lambda ids: {f: replay.V[replay.vrow[f]] for f in ids if f in replay.vrow}  # noqa: E731
            start = time.perf_counter()
            lists, exact = rerank.rerank_visual(lists, exact, replay.V[replay.vrow[q]][None, :], fetch, **rr)
            RERANK_SECONDS[0] += time.perf_counter() - start
        for name, kwargs in settings:
            fused = fusion.fuse(lists, exact, head=head, **kwargs)
            totals[name] += ap_at([f.figure_id for f in fused], replay.qrels[q], replay.k)
    return {name: total / len(replay.queries) for name, total in totals.items()}


#: the nearness thresholds tried by --calibrate (None: that switch off)
NEAR_GRID = (None, *(round(0.30 + 0.05 * i, 2) for i in range(12)))  # 0.30 .. 0.85
FAR_GRID = (None, *(round(0.15 + 0.05 * i, 2) for i in range(10)))  # 0.15 .. 0.60
#: the agreement the switch to avg also needs (fusion's ``near_agree``; 0: the nearness alone, as before stop 20)
NEAR_AGREE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def per_query(replay: Replay, rr: dict | None = None) -> list[dict]:
    """Per query: the visual head's nearness (None without both lists) and the AP@k of every rule auto can take."""
    rows = []
    for q in replay.queries:
        lists, exact = replay.lists(q)
        both = bool(lists.get("visual")) and bool(lists.get("text"))
        # auto's switch reads the visual head before any re-ranking, as the service does (fusion.switch_head)
        h, agreed = fusion.switch_head(lists) if both else (None, None)
        row = {"h": h, "agreement": agreed}
        if rr is not None and "visual" in lists:
            fetch = lambda ids: {f: replay.V[replay.vrow[f]] for f in ids if f in replay.vrow}  # noqa: E731
            lists, exact = rerank.rerank_visual(lists, exact, replay.V[replay.vrow[q]][None, :], fetch, **rr)
        for name, mode in (("text", "text"), ("visual", "visual"), ("avg", "avg"), ("text-z", "text-z"), ("auto", "auto")):
            if mode == "text-z" and not both:
                continue
            fused = fusion.fuse(lists, exact, mode=mode, head=(h, agreed) if both else None)
            row[name] = ap_at([f.figure_id for f in fused], replay.qrels[q], replay.k)
        rows.append(row)
    return rows


def auto_ap(rows: list[dict], near: float | None, far: float | None,
            near_agree: float = fusion.NEAR_AGREE) -> float:
    """Mean AP@k of ``auto`` with these thresholds, from :func:`per_query` rows (as fusion.fuse switches:
    to ``avg`` only when the lists' agreement is at least ``near_agree`` too; a row without one agrees)."""
    total = 0.0
    for row in rows:
        h = row["h"]
        if h is not None and near is not None and h >= near and row.get("agreement", 1.0) >= near_agree:
            total += row["avg"]
        elif h is not None and far is not None and h < far:
            total += row["text-z"]
        else:
            total += row["auto"]
    return total / max(1, len(rows))


def mean_of(rows: list[dict], key: str) -> float:
    return sum(row.get(key, 0.0) for row in rows) / max(1, len(rows))


#: the largest drop of a held-out set's ``auto`` AP@k below the uncalibrated rule that still counts as
#: noise (fixed by the lead's rule of 2026-11-29, before any model was calibrated with it: ten times the
#: tables' rounding, well below the tie-order differences between two copies of one collection)
NOISE = 0.001


def choose(sets: dict[str, list[dict]], held_out: set[str] | None = None,
           noise: float = NOISE) -> tuple[tuple[float | None, float | None, float] | None, list[dict]]:
    """The thresholds (near, far, near_agree) chosen on the held-out training-side sets, and every triple's scores.

    Rule (the lead's, 2026-11-29; docs/encoder.md "stop 18"): only the sets in ``held_out`` count —
    drawings the model was NOT trained on (held-out patents of the training side); the others are shown,
    never counted (``held_out=None``: every set counts, for the unit tests' small examples). A pair is
    admissible when, on every counted set, ``auto`` is at least the best single channel (text or visual)
    AND at most ``noise`` below the uncalibrated rule (no thresholds). Among the admissible pairs the
    highest mean ``auto`` over the counted sets wins (each set once); ties: the earlier pair on the grid
    (no threshold first, then low to high), and a mean gain of at most ``noise`` over the uncalibrated
    rule is a tie too (no thresholds for noise). When no pair is admissible the choice is ``None``: the
    caller refuses to write an entry. Since stop 20 each ``near`` is tried with every ``near_agree`` of
    NEAR_AGREE_GRID (the agreement the switch to ``avg`` also needs; 0 first, so ties keep the switch on
    the nearness alone), and "pair" above means the triple."""
    counted = [name for name in sets if held_out is None or name in held_out]
    if not counted:
        raise ValueError("no held-out set to calibrate on")
    best_single = {name: max(mean_of(sets[name], "text"), mean_of(sets[name], "visual")) for name in counted}
    uncalibrated = {name: auto_ap(sets[name], None, None) for name in counted}
    table = []
    grid = [(near, far, agree) for near in NEAR_GRID for far in FAR_GRID
            for agree in (NEAR_AGREE_GRID if near is not None else NEAR_AGREE_GRID[:1])]
    for near, far, agree in grid:
        if near is not None and far is not None and far >= near:
            continue
        scores = {name: auto_ap(rows, near, far, agree) for name, rows in sets.items()}
        margin = min(scores[name] - best_single[name] for name in counted)
        drop = min(scores[name] - uncalibrated[name] for name in counted)
        table.append({"near": near, "far": far, "near_agree": agree, "scores": scores, "margin": margin,
                      "drop": drop, "admissible": margin >= 0 and drop >= -noise,
                      "mean": sum(scores[name] for name in counted) / len(counted)})
    admissible = [t for t in table if t["admissible"]]
    if not admissible:
        return None, table
    pick = max(admissible, key=lambda t: t["mean"])  # max keeps the first of equals: the earlier pair
    plain = table[0]  # (None, None): the uncalibrated rule
    if plain["admissible"] and pick["mean"] - plain["mean"] <= noise:
        pick = plain  # a gain within noise is a tie, and ties go to no thresholds
    return (pick["near"], pick["far"], pick["near_agree"]), table


def inherited_holds(sets: dict[str, list[dict]], held_out: set[str] | None, chosen: tuple | None,
                    inherited: tuple, noise: float = NOISE) -> tuple[bool, dict[str, float]]:
    """Whether an index that would inherit another entry's thresholds (an ``@sheet=`` index without an entry of its own
    uses its model file's) needs no entry of its own, and the inherited triple's ``auto`` per set.

    The rule of :func:`choose` for an entry's own thresholds, applied to the key: the inherited triple must be
    admissible on these sets (on every counted set ``auto`` at least the best single channel and at most ``noise``
    below the uncalibrated rule), and the chosen triple must gain more than ``noise`` over it on the counted sets'
    mean for an entry of its own to be written (a gain within noise is a tie; ties keep the inherited entry)."""
    counted = [name for name in sets if held_out is None or name in held_out]
    near, far, agree = inherited
    scores = {name: auto_ap(rows, near, far, agree) for name, rows in sets.items()}
    admissible = all(scores[name] >= max(mean_of(sets[name], "text"), mean_of(sets[name], "visual"))
                     and scores[name] >= auto_ap(sets[name], None, None) - noise for name in counted)
    if not admissible:
        return False, scores
    if chosen is None:
        return True, scores
    mean = lambda triple: sum(auto_ap(sets[name], *triple) for name in counted) / len(counted)  # noqa: E731
    return mean(chosen) - mean(inherited) <= noise, scores


FORBIDDEN_SOURCE = "us-design-grants"
ODD_SOURCE = "us-design-2007"


def forbidden_queries(replay: Replay) -> list[str]:
    """Queries a calibration may never use: design grants, odd-numbered 2007 designs (by source folder)."""
    bad = []
    for q in replay.queries:
        patent = replay.pool.figures[q].patent
        source = replay.sources.get(patent) or ""
        parts = Path(source).parts
        digits = re.sub(r"\D", "", number(patent))
        if FORBIDDEN_SOURCE in parts or (ODD_SOURCE in parts and digits and int(digits[-1]) % 2 == 1):
            bad.append(q)
    return bad


def figsearch(cli: list[str]) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_THREAD_LIMIT="1")
    print("figsearch " + shlex.join(cli), file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "figsearch", *cli], env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): figsearch {shlex.join(cli)}")


def visual_identity(path: Path) -> dict:
    with Collection.open(path) as c:
        settings = encoder_settings(c, "visual") or {}
    return settings.get("identity") or {}


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link (no space; a collection refuses images that resolve outside it, so no symlink), else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def indexed_with(base: Path, target: Path, model: str, reuse: bool) -> Path:
    """``target``: a copy of the collection ``base`` indexed with ``model`` (database and index copied, the
    image files hard-linked where the file system allows: ``base`` is only read)."""
    if reuse and (target / "figsearch.sqlite").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in base.iterdir():
        if item.name.startswith("figsearch.sqlite") or item.name == "index":
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, target / item.name)
        elif item.is_dir():
            shutil.copytree(item, target / item.name, copy_function=_link_or_copy)
        else:
            shutil.copy2(item, target / item.name)
    figsearch(["index", "--collection", str(target), "--visual-model", model, "-q"])
    return target


def training_sets(args) -> list[tuple[str, Path, str, dict, bool]]:
    """(name, collection, rule, Replay options, held out) of every training-side set, built or reused under
    --work; ``held out``: the set's queries are drawings the model was not trained on (only those count)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import class_level_eval

    work, data, model = args.work, args.data, args.visual_model
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
    sets = []
    if not args.no_default_sets:
        even = work / "even-base"
        if not (args.reuse and (even / "figsearch.sqlite").exists()):
            class_level_eval.make_source(data, "even", work / "even-source")
            shutil.rmtree(even, ignore_errors=True)
            figsearch(["ingest", str(work / "even-source"), "--collection", str(even), "--skip-ocr", "-q"])
        even_model = indexed_with(even, work / f"even-{tag}", model, args.reuse)
        sets.append(("even 2007, class level", even_model, class_level_eval.RULE, {}, False))
        if args.held_out_2007:
            held_out_2007 = read_patents(args.held_out_2007)
            sets.append(("even 2007 held out, class level", even_model, class_level_eval.RULE,
                         {"query_patents": held_out_2007}, True))
            # the same queries searching only among each other: no drawing in the lists was trained on, as
            # on the odd-numbered evaluation designs (the set above ranks them among trained-on designs)
            sets.append(("even 2007 held out among themselves, class level", even_model, class_level_eval.RULE,
                         {"query_patents": held_out_2007, "candidate_patents": held_out_2007}, True))
        pdfs = work / "pdfs-base"
        if not (args.reuse and (pdfs / "figsearch.sqlite").exists()):
            shutil.rmtree(pdfs, ignore_errors=True)
            figsearch(["ingest", str(data / "us-design-pdfs"), "--collection", str(pdfs), "--skip-ocr", "-q"])
        pdfs_model = indexed_with(pdfs, work / f"pdfs-{tag}", model, args.reuse)
        sets.append(("design PDFs without OCR, same-patent", pdfs_model, "same-patent", {}, False))
        if args.held_out:
            sets.append(("design PDFs held out, same-patent", pdfs_model, "same-patent",
                         {"query_patents": read_patents(args.held_out)}, True))
    for i, spec in enumerate(args.set):
        path, rule, *rest = spec.split(",")
        loose = [item for item in rest if "=" not in item]
        if loose:  # e.g. a comma inside name=...: the spec is split at every comma
            raise SystemExit(f"--set {spec}: {loose[0]!r} is not KEY=VALUE (options are separated by commas; "
                             "a name may not contain one)")
        options = dict(item.split("=", 1) for item in rest)
        name = options.pop("name", f"{Path(path).name} ({rule})")
        held_out = options.pop("held-out", "no").lower() in ("1", "yes", "true")
        replay = {}
        if "source" in options:
            replay["only_sources"] = [Path(options.pop("source"))]
        if "patents" in options:
            replay["query_patents"] = read_patents(Path(options.pop("patents")))
        if options:
            raise SystemExit(f"--set {spec}: unknown option(s) {sorted(options)}")
        collection = Path(path)
        if not matches(collection, model):  # re-indexed in a copy; the given collection is only read
            collection = indexed_with(collection, work / f"set{i}-{collection.name}-{tag}", model, args.reuse)
        sets.append((name, collection, rule, replay, held_out))
    return sets


def matches(collection: Path, model: str) -> bool:
    """Whether the collection's visual index was built with this visual model spec (same name, file digest and
    sheet context: ``@sheet=1`` stores cut figures mixed with their sheets, other vectors than the plain model's)."""
    from figsearch.embed.catalog import create_visual

    have, want = visual_identity(collection), create_visual(model).identity
    fields = ("name", "model_sha256", "sheet_context")
    return tuple(have.get(f) for f in fields) == tuple(want.get(f) for f in fields)


def calibration_rerank(args) -> dict | None:
    """The re-ranking the calibration replays ``auto`` with: the service's default for mode ``auto``
    (``query.rerank_by_default``, with ``rerank``'s default settings) unless ``--calibrate-rerank`` says."""
    from figsearch.search.query import rerank_by_default

    choice = args.calibrate_rerank
    if choice == "default":
        return {} if rerank_by_default("auto") else None
    return None if choice == "off" else rerank_settings(choice)


def calibrate(args) -> int:
    sets = training_sets(args)
    rr = calibration_rerank(args)
    defaults = f"{rerank.METHOD} {rerank.QUERY_NEIGHBOURS},{rerank.DB_NEIGHBOURS},{rerank.ALPHA:g}"
    rr_label = ("off" if rr is None else ",".join(f"{k}={v}" for k, v in rr.items())
                or f"the service's default: {defaults}")
    rows, names, keys, held_out, rules = {}, [], set(), set(), {}
    for name, collection, rule, options, is_held_out in sets:
        replay = Replay(collection, rule, args.k, [], **options)
        bad = forbidden_queries(replay)
        if bad:
            raise SystemExit(f"{name}: {len(bad)} queries are design grants or odd-numbered 2007 designs "
                             f"(e.g. {bad[0]}); a calibration never uses them")
        keys.add((replay.visual_name, replay.visual_model, replay.visual_sheet))
        rows[name] = per_query(replay, rr)
        rules[name] = rule
        if is_held_out:
            held_out.add(name)
        names.append(f"{name}: {collection} ({rule}, {len(rows[name])} queries{', held out' if is_held_out else ''})")
    if len(keys) != 1:
        raise SystemExit(f"the sets were indexed with different visual models: {sorted(keys)}")
    if not any(rules[name].startswith("same-class") for name in held_out):
        raise SystemExit("no held-out class-level set: give --held-out-2007 (the model's --class-val designs); "
                         "the rule checks auto >= text there at calibration time")
    encoder, digest, sheet = keys.pop()
    chosen, table = choose(rows, held_out, args.noise)
    near, far, agree = chosen if chosen is not None else (None, None, fusion.NEAR_AGREE)
    print(f"# auto calibration for visual encoder {encoder} (model {digest}), AP@{args.k}; visual list re-ranked: "
          f"{rr_label} (the switch reads the head before re-ranking)\n")
    print("Counted: only the held-out sets (drawings the model was not trained on); the others are shown, not counted.\n")
    print("| training-side set | counted | queries | text | visual | best channel | avg | text alone (z) "
          "| auto uncalibrated | auto chosen | chosen − best channel | chosen − uncalibrated | h below far | h at/above near |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, data in rows.items():
        hs = [r["h"] for r in data if r["h"] is not None]
        below = sum(1 for h in hs if far is not None and h < far) / max(1, len(data))
        above = sum(1 for h in hs if near is not None and h >= near) / max(1, len(data))
        best = max(mean_of(data, "text"), mean_of(data, "visual"))
        plain, picked = auto_ap(data, None, None), auto_ap(data, near, far, agree)
        print(f"| {name} | {'yes' if name in held_out else 'no (trained on)'} | {len(data)} | {mean_of(data, 'text'):.4f} "
              f"| {mean_of(data, 'visual'):.4f} | {best:.4f} | {mean_of(data, 'avg'):.4f} | {mean_of(data, 'text-z'):.4f} "
              f"| {plain:.4f} | {picked:.4f} | {picked - best:+.4f} | {picked - plain:+.4f} "
              f"| {100 * below:.0f} % | {100 * above:.0f} % |")
    rule = (f"only the held-out sets count; auto >= the best single channel on each and at most {args.noise} below "
            f"the uncalibrated rule on each, then the highest mean auto over them (a gain of at most {args.noise} "
            "over the uncalibrated rule keeps no thresholds)")
    print("\nbest pairs (mean auto over the held-out sets, worst margin to the best channel, worst change from "
          "the uncalibrated rule; every set's auto):")
    for t in sorted(table, key=lambda t: (t["admissible"], t["mean"]), reverse=True)[:10]:
        print(f"  near {t['near']}, far {t['far']}, near_agree {t['near_agree']}: mean {t['mean']:.4f}, margin {t['margin']:+.4f}, "
              f"change {t['drop']:+.4f}{'' if t['admissible'] else ' (refused)'}  "
              + "  ".join(f"{v:.4f}" for v in t["scores"].values()))
    for name, data in rows.items():
        hs = sorted(r["h"] for r in data if r["h"] is not None)
        if hs:
            print(f"nearness on {name}: 10/50/90 % {hs[len(hs) // 10]:.3f} / {hs[len(hs) // 2]:.3f} / {hs[9 * len(hs) // 10]:.3f}")
    print("\nsets:\n" + "\n".join(f"  {n}" for n in names))
    if chosen is None:
        losing = [f"{name} (auto {auto_ap(rows[name], None, None):.4f} < "
                  f"{max(mean_of(rows[name], 'text'), mean_of(rows[name], 'visual')):.4f})" for name in held_out
                  if auto_ap(rows[name], None, None) < max(mean_of(rows[name], "text"), mean_of(rows[name], "visual"))]
        print(f"\nREFUSED: no thresholds keep auto at the best single channel on every held-out set; "
              f"uncalibrated, auto loses on: {', '.join(losing) or 'none'}. Nothing written.")
        return 2
    print(f"\nchosen: near {near}, far {far}, near_agree {agree}  (rule: {rule})")
    inherited = fusion.calibration_entry(encoder, digest) if sheet else None
    if inherited is not None:  # an @sheet= index without an entry of its own uses its model file's (fusion.calibration_entry)
        triple = (inherited.get("near"), inherited.get("far"), inherited.get("near_agree", fusion.NEAR_AGREE))
        holds, scores = inherited_holds(rows, held_out, chosen, triple, args.noise)
        print(f"\nthe model file's entry {fusion.calibration_key(encoder, digest)} (near {triple[0]}, far {triple[1]}, "
              f"near_agree {triple[2]}), which this index (@sheet={sheet:g}) uses without an entry of its own: "
              + "  ".join(f"{name} {scores[name]:.4f}" for name in rows))
        if holds:
            print("it holds (admissible, and the chosen triple gains at most the noise over it): no entry of its own, "
                  "nothing written")
            return 0
        print("it does not hold (not admissible here, or the chosen triple gains more than the noise over it): "
              "an entry of its own" + (" is written" if args.write else " would be written with --write"))
    if args.write:
        key = fusion.calibration_key(encoder, digest, sheet)
        document = json.loads(fusion.CALIBRATION_FILE.read_text(encoding="utf-8"))
        counted = [name for name in rows if name in held_out]
        document.setdefault("encoders", {})[key] = {
            "near": near, "far": far, "near_agree": agree,
            "chosen": {"date": datetime.date.today().isoformat(), "model": args.visual_model, "k": args.k,
                       "rule": rule, "noise": args.noise, "rerank": rr_label,
                       "sets": {name: round(auto_ap(rows[name], near, far, agree), 4) for name in counted},
                       "uncalibrated": {name: round(auto_ap(rows[name], None, None), 4) for name in counted},
                       "best_channel": {name: round(max(mean_of(rows[name], "text"), mean_of(rows[name], "visual")), 4)
                                        for name in counted},
                       "shown_not_counted": {name: round(auto_ap(data, near, far, agree), 4) for name, data in rows.items()
                                             if name not in held_out}},
        }
        text = json.dumps(document, indent=2, ensure_ascii=False)
        fusion.CALIBRATION_FILE.write_text(text + "\n", encoding="utf-8")
        print(f"\nwrote {key}: near {near}, far {far}, near_agree {agree} to {fusion.CALIBRATION_FILE}")
    return 0


def rerank_settings(spec: str) -> dict:
    """``Q,D,ALPHA`` (α-query expansion + database augmentation), ``diffusion,K,GAMMA,ALPHA`` or
    ``kreciprocal,K1,K2,LAMBDA`` (k-reciprocal re-ranking)."""
    return rerank.settings_from_spec(spec)


def service_timing(path: Path, n: int, mode: str, setting: str | None = None) -> int:
    """Milliseconds per search through the search service with the re-ranking off and on, alternating
    query by query (so the machine's load hits both alike), on ``n`` seeded query figures."""
    import random
    import statistics

    from figsearch.evaluate.rules import load_pool
    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    method = rerank.METHOD
    if setting:  # the service calls rerank.rerank_visual with its defaults: bind this setting instead
        import functools

        chosen_setting = rerank_settings(setting)
        method = setting
        rerank.rerank_visual = functools.partial(rerank.rerank_visual, **chosen_setting)
    with SearchService.open(path) as service:
        figures = sorted(load_pool(service.collection).figures)
        chosen = random.Random(0).sample(figures, min(n, len(figures)))
        times: dict[bool, list[float]] = {False: [], True: []}
        service.search(Query(figure_id=chosen[0], mode=mode, k=50, rerank=True))  # warm: vectors, index
        for i, figure in enumerate(chosen):
            for on in ((False, True) if i % 2 == 0 else (True, False)):
                start = time.perf_counter()
                service.search(Query(figure_id=figure, mode=mode, k=50, rerank=on))
                times[on].append(1000 * (time.perf_counter() - start))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    load = os.getloadavg()[0]
    print(f"{path}: {len(chosen)} queries, mode {mode}, k 50, re-ranking {method}: median {off:.1f} ms off, "
          f"{on:.1f} ms on, {on - off:+.1f} ms ({on / off:.2f}x); means {statistics.mean(times[False]):.1f} / "
          f"{statistics.mean(times[True]):.1f} ms; load average {load:.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", type=Path, nargs="?")
    parser.add_argument("--rule", default="same-patent")
    parser.add_argument("--skip-source", type=Path, action="append", default=[])
    parser.add_argument("--only-source", type=Path, action="append", default=[],
                        help="queries only of patents read from this folder (repeatable)")
    parser.add_argument("--query-patents", type=Path, help="queries only of the patents listed in this file")
    calib = parser.add_argument_group("calibrating auto for a visual model (--calibrate)")
    calib.add_argument("--calibrate", action="store_true", help="choose the model's near/far thresholds")
    calib.add_argument("--visual-model", default="backbone:drawing-backbone3.onnx",
                       help="the visual model spec, as figsearch index --visual-model takes it")
    calib.add_argument("--data", type=Path,
                       default=Path(os.environ.get("FIGSEARCH_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")))
    calib.add_argument("--work", type=Path, default=Path("/tmp/figsearch-calibrate"))
    calib.add_argument("--reuse", action="store_true", help="reuse collections already built under --work")
    calib.add_argument("--no-default-sets", action="store_true", help="only the --set collections")
    calib.add_argument("--held-out-2007", type=Path,
                       help="even 2007 designs the model was not trained on (its --class-val file): a set of their own")
    calib.add_argument("--held-out", type=Path,
                       help="patents held out of the model's training (same-patent validation): a set of their own")
    calib.add_argument("--set", action="append", default=[],
                       metavar="PATH,RULE[,source=DIR][,patents=FILE][,name=N][,held-out=yes]",
                       help="one more training-side collection (repeatable); held-out=yes: its queries are drawings "
                            "the model was not trained on, so it counts (only held-out sets count)")
    calib.add_argument("--noise", type=float, default=NOISE,
                       help="the largest drop below the uncalibrated rule on a held-out set that counts as noise")
    calib.add_argument("--write", action="store_true", help="store the chosen entry in fusion_calibration.json")
    calib.add_argument("--calibrate-rerank", default="default", metavar="default|off|SPEC",
                       help="the re-ranking of the visual list the calibration replays auto with; default: as the service "
                            "ranks auto by default (query.rerank_by_default)")
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--modes", default=",".join(fusion.MODES))
    parser.add_argument("--rerank", action="append", default=[],
                        help="Q,D,ALPHA (alpha-query expansion + database augmentation), diffusion,K,GAMMA,ALPHA or "
                             "kreciprocal,K1,K2,LAMBDA (repeatable)")
    parser.add_argument("--calibration", action="append", default=[],
                        help="NEAR,FAR[,AGREE]: also replay auto with these nearness thresholds ('-' for none) and the "
                             "agreement the switch to avg needs (near_agree; repeatable)")
    parser.add_argument("--service-timing", type=int, default=0, metavar="N",
                        help="only time N searches through the search service, re-ranking off and on, alternating")
    parser.add_argument("--timing-mode", default="auto", help="the mode --service-timing searches in")
    parser.add_argument("--timing-rerank", help="the re-ranking setting --service-timing times (as --rerank; default: the service's)")
    args = parser.parse_args()
    if args.service_timing:
        return service_timing(args.collection, args.service_timing, args.timing_mode, args.timing_rerank)
    if args.calibrate:
        return calibrate(args)
    if args.collection is None:
        parser.error("a COLLECTION is needed (or --calibrate)")
    replay = Replay(args.collection, args.rule, args.k, args.skip_source, args.only_source,
                    read_patents(args.query_patents) if args.query_patents else None)
    calibration = fusion.near_thresholds(replay.visual_name, replay.visual_model, replay.visual_sheet)  # as the service
    settings = [(m, {"mode": m, **(calibration if m == "auto" else {})}) for m in args.modes.split(",")]
    if "auto" in args.modes.split(",") and any(v is not None for v in calibration.values()):
        settings.append(("auto-uncalibrated", {"mode": "auto"}))  # the rule before the nearness thresholds
    print(f"visual encoder {replay.visual_name}: auto calibration {calibration}", file=sys.stderr)
    for spec in args.calibration:
        near, far, *agree = (None if v.strip() == "-" else float(v) for v in spec.split(","))
        settings.append((f"auto[{spec}]", {"mode": "auto", "near": near, "far": far,
                                           "near_agree": agree[0] if agree and agree[0] is not None else fusion.NEAR_AGREE}))
    start = time.perf_counter()
    result = evaluate(replay, settings)
    print("no rerank  " + "  ".join(f"{n} {v:.4f}" for n, v in result.items())
          + f"  ({1000 * (time.perf_counter() - start) / max(1, len(replay.queries)):.1f} ms per query, all included)")
    for spec in args.rerank:
        rr = rerank_settings(spec)
        start = time.perf_counter()
        result = evaluate(replay, settings, rr)
        print(f"rerank {spec}  " + "  ".join(f"{n} {v:.4f}" for n, v in result.items())
              + f"  ({1000 * (time.perf_counter() - start) / max(1, len(replay.queries)):.1f} ms per query, all included; "
              f"re-ranking alone {1000 * RERANK_SECONDS[0] / max(1, len(replay.queries)):.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
