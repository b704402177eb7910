"""Word queries in mode ``auto``: with the word-query thresholds (stop 29) against ``auto`` before them and the text.

    PYTHONPATH=src python benchmarks/word_query_fusion.py -c COLLECTION [--set upair --set glossary --set designs-even]

For a word query (no drawing, no figure) ``auto``'s visual list is the words mapped into the drawing space by the
visual encoder's text adapter. Before stop 29 the service ranked it with the visual encoder's switch and thresholds,
calibrated on drawing queries (``fusion.near_thresholds``); since then with ``fusion.WORDS_THRESHOLDS`` (no switch to
``avg``, the text alone below the words' nearness ``far``, the visual weight x agreement squared). Per word set of
``benchmarks/lexical_eval.py`` (its queries, truth and ranked figures; training side: upair, glossary, designs-even;
evaluation side, once, after choosing: designs-odd, grants), every query goes through ``SearchService.search`` as in
``lexical_eval.py --service-modes`` (lexical on, the default; k = 1,000; the set's ranked figures kept, the first 50
scored) in mode ``text``, in ``auto`` as before stop 29 (the service told the query is not one by words alone, so the
encoder's entry ranks it as it did) and in ``auto`` as shipped. Prints AP@50 per variant and paired sign-flip p-values
(10,000 flips, seed 0). COLLECTION is only read.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lexical_eval  # noqa: E402

from figsearch.evaluate.metrics import per_query  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--collection", type=Path, required=True)
    parser.add_argument("--set", action="append", dest="sets", help="a lexical_eval.py word set (repeatable)")
    parser.add_argument("--data", type=Path, default=lexical_eval.DATA)
    args = parser.parse_args()
    from figsearch.records import Hit
    from figsearch.search.query import Filters, Query
    from figsearch.search.service import SearchService

    service = SearchService.open(args.collection)
    # ids and scores only: 1,000 hits' sentences and signs would cost most of the time (as lexical_eval.py)
    service._hits = lambda page, offset: [Hit(item.figure_id, "", item.score, offset + rank, scores=item.scores)
                                          for rank, item in enumerate(page, start=1)]
    by_words = SearchService.__dict__["_by_words_alone"]  # the staticmethod itself, to put back
    before = "auto before stop 29"
    for name in args.sets or ["upair", "glossary", "designs-even"]:
        queries, qrels, ranked, leave_out = lexical_eval.build_set(name, service.collection, args.data)
        runs: dict[str, dict] = {}
        for variant, mode, old in (("text", "text", False), (before, "auto", True), ("auto", "auto", False)):
            SearchService._by_words_alone = staticmethod(lambda query: False) if old else by_words
            try:
                for qid, text in queries.items():
                    result = service.search(Query(text=text, mode=mode, k=1000, lexical=True,
                                                  filters=Filters(exclude_patents=tuple(leave_out.get(qid, ())))))
                    runs.setdefault(variant, {})[qid] = [(h.figure_id, float(h.score)) for h in result.hits
                                                         if h.figure_id in ranked][:50]
            finally:
                SearchService._by_words_alone = by_words
        qids = sorted(queries)
        ap = {v: per_query(qrels, run, ["AP@50"], qids)["AP@50"] for v, run in runs.items()}
        mean = {v: float(np.mean([ap[v][q] for q in qids])) for v in ap}
        p = lambda a, b: lexical_eval.sign_flip([ap[a][q] for q in qids], [ap[b][q] for q in qids])  # noqa: E731
        changed = sum(ap["auto"][q] != ap[before][q] for q in qids)
        print(f"{name}: {len(qids)} queries  text {mean['text']:.4f}  {before} {mean[before]:.4f}  auto {mean['auto']:.4f}"
              f"  | auto - text {mean['auto'] - mean['text']:+.4f} (p={p('text', 'auto'):.3f})"
              f"  auto - before {mean['auto'] - mean[before]:+.4f} (p={p(before, 'auto'):.3f}; {changed} queries changed)"
              f"  before - text {mean[before] - mean['text']:+.4f} (p={p('text', before):.3f})  {time.strftime('%H:%M:%S')}",
              flush=True)
    service.close()


if __name__ == "__main__":
    main()
