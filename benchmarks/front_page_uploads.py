"""Every front page of a collection, uploaded from its source file (the PDF's page 1, the -D00000 sheet): does
``exclude_query_patent`` recognise it as the collection's (``SearchService.near_copy``), and by what?

    PYTHONPATH=src python benchmarks/front_page_uploads.py -c COLL [--data ../shared/data]

Run it with a baseline tree's src on PYTHONPATH for the before. The source files are found under --data by their
path below the ``data`` folder the collection was built from (its figures' source_file). Prints one line per
(file type, outcome, how) and near_copy's time per upload (the upload already decoded; it encodes the upright
drawing for the visual check, as a text-mode search does).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--collection", required=True)
    parser.add_argument("--data", default="../shared/data", help="the data folder the collection was built from")
    args = parser.parse_args()
    from figsearch.records import FigureRole
    from figsearch.search.inputs import load_query_page
    from figsearch.search.service import SearchService

    data = Path(args.data).resolve()
    with SearchService.open(args.collection) as service:
        fronts = service.collection.figures(roles=(FigureRole.FRONT_PAGE,))
        outcomes, took, missing = Counter(), [], 0
        for figure in fronts:
            relative = str(figure.source_file).split("/data/", 1)[-1]
            source = data / relative
            if not source.is_file():
                missing += 1
                continue
            image, _ = load_query_page(str(source), page=figure.page or 1)
            started = time.perf_counter()
            found = service.near_copy(image)
            took.append((time.perf_counter() - started) * 1000)
            outcome = "not recognised" if found is None else ("own patent" if found[0].patent == figure.patent
                                                             else "ANOTHER patent")
            outcomes[(source.suffix.lower(), outcome, found[1] if found else "")] += 1
    print(f"{len(fronts)} front pages, {missing} without their source file under {data}")
    for (suffix, outcome, how), count in sorted(outcomes.items()):
        print(f"{count:5d}  {suffix:5} {outcome}{': ' + how if how else ''}")
    if took:
        took.sort()
        print(f"near_copy per upload: median {took[len(took) // 2]:.1f} ms, max {took[-1]:.1f} ms")


if __name__ == "__main__":
    main()
