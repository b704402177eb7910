"""A tiny judged collection and a deterministic fake search service for the evaluation tests."""

from __future__ import annotations

from pathlib import Path

from figsearch.errors import EmptyCollection, NotFound
from figsearch.records import Classification, Figure, FigureRole, Hit, Patent
from figsearch.search.api import SearchResult
from figsearch.store import Collection


def _patent(pub: str, classes: list[tuple[str, str]]) -> Patent:
    return Patent(pub, pub[:2], pub[2:], classifications=[Classification(s, c) for s, c in classes])


def _fig(fid: str, pub: str, seq: int, role=FigureRole.DRAWING, parent=None) -> Figure:
    return Figure(figure_id=fid, patent=pub, role=role, sequence=seq, parent_id=parent)


def build_tiny(path: Path) -> Path:
    """P1: front page, 3 sheets, a figure cut from sheet 3; P2: 2 sheets and a formula; P3: 1 sheet."""
    with Collection.open(path, create=True) as c:
        c.upsert_patent(
            _patent("US1S", [("USPC", "D28 47"), ("CPC", "B26B 21/4068")]),
            [
                _fig("P1-D0", "US1S", 0, FigureRole.FRONT_PAGE),
                _fig("P1-D1", "US1S", 1),
                _fig("P1-D2", "US1S", 2),
                _fig("P1-D3", "US1S", 3),
                _fig("P1-D3a", "US1S", 4, parent="P1-D3"),
            ],
        )
        c.upsert_patent(
            _patent("US2S", [("USPC", "D28/50"), ("CPC", "B26B 21/00")]),
            [_fig("P2-D1", "US2S", 1), _fig("P2-D2", "US2S", 2), _fig("P2-F1", "US2S", 3, FigureRole.NON_DRAWING)],
        )
        c.upsert_patent(_patent("US3S", [("USPC", "D12-1")]), [_fig("P3-D1", "US3S", 1)])
    return path


#: every figure id of the tiny collection, in a fixed order
ALL = ["P1-D0", "P1-D1", "P1-D2", "P1-D3", "P1-D3a", "P2-D1", "P2-D2", "P2-F1", "P3-D1"]


class FakeBackend:
    """Answers from a hand-written table ``{mode: {query: [figure ids in rank order]}}``.

    Scores fall by 0.1 per rank from 1.0. Modes listed in ``unavailable`` raise EmptyCollection,
    as the service does for a modality with nothing indexed. Every query asked is recorded.
    """

    def __init__(self, table: dict[str, dict[str, list[str]]], unavailable: tuple[str, ...] = ()) -> None:
        self.table = table
        self.unavailable = unavailable
        self.asked = []
        self.closed = False

    def search(self, query):
        self.asked.append(query)
        if query.figure_id not in ALL:
            raise NotFound(f"unknown figure id {query.figure_id!r}")
        if query.mode in self.unavailable:
            raise EmptyCollection(f"no {query.mode} vectors in this collection")
        ranked = self.table.get(query.mode, {}).get(query.figure_id, [])
        hits = [
            Hit(figure_id=fid, patent=fid.split("-")[0], score=round(1.0 - 0.1 * i, 6), rank=i + 1)
            for i, fid in enumerate(ranked[: query.k])
        ]
        # total: every candidate before paging, as the service counts it
        return SearchResult(hits=hits, total=len(ranked), mode=query.mode)

    def info(self) -> dict:
        return {"visual_encoder": "fake", "text_encoder": "fake"}

    def close(self) -> None:
        self.closed = True
