"""The CSV export guards against spreadsheet formulas in texts that come from documents or queries."""

import csv
import io
from types import SimpleNamespace

from figsearch.search.export import hits_csv


def _hit(**fields):
    base = dict(rank=1, patent="EP1", figure_id="EP1-f1", label="FIG. 1", title="Printer", score=-0.25,
                scores={"visual": 0.5}, matched_words=[], reference_signs=["12"], sentences=["A head 12."])
    return SimpleNamespace(**{**base, **fields})


def test_a_title_or_sentence_that_starts_a_formula_is_written_as_text():
    hits = [_hit(title='=HYPERLINK("http://x","y")', sentences=["+1 and more", "a plain one"],
                 matched_words=["@cmd"], label="-FIG")]
    row = next(csv.DictReader(io.StringIO(hits_csv(hits))))
    assert row["title"] == '\'=HYPERLINK("http://x","y")'
    assert row["sentences"] == "'+1 and more | a plain one"
    assert row["matched_words"] == "'@cmd" and row["label"] == "'-FIG"
    assert row["score"] == "-0.25"  # numbers are the export's own: left as numbers
    assert row["reference_signs"] == "12" and row["patent"] == "EP1"
