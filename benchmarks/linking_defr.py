"""Sign -> sentence links in German and French, against the sentences of linking_truth_defr.json (read by a developer session, an AI model: its header).

For every sentence the truth lists the reference signs it names; figsearch's ``find_mentions`` with
the sentence's language gives its own list (ranges written out). A link is a (sentence, sign)
pair; precision and recall are over all pairs (micro), per language and in all, for each split of
the truth ("development": the rules were written while reading these sentences; "held-out":
annotated after the rules were frozen). English rules on the same sentences are printed as the
baseline: what linking did before it knew these languages.

    python benchmarks/linking_defr.py [--show-errors]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from figsearch.link.mentions import find_mentions, named_signs

TRUTH = Path(__file__).with_name("linking_truth_defr.json")


def predicted(text: str, lang: str) -> set[str]:
    return {sign for mention in find_mentions(text, lang) for sign in named_signs(mention)}


def scores(items: list[dict], lang_of=lambda item: item["lang"]) -> dict[str, tuple[float, float, int, int, int]]:
    """language (and "all") -> (precision, recall, true positives, predicted, true links)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in items:
        truth, found = set(item["signs"]), predicted(item["text"], lang_of(item))
        for key in (item["lang"], "all"):
            counts[key][0] += len(truth & found)
            counts[key][1] += len(found)
            counts[key][2] += len(truth)
    return {key: (tp / p if p else 1.0, tp / t if t else 1.0, tp, p, t) for key, (tp, p, t) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    data = json.loads(TRUTH.read_text(encoding="utf-8"))
    items = data["sentences"]
    print(f"{len(items)} truth sentences, {sum(len(i['signs']) for i in items)} sign mentions "
          f"({data['header']['how'][:60]}...)")
    for split in ("held-out", "development", None):
        chosen = [i for i in items if split is None or i.get("split") == split]
        print(f"\n{split or 'all sentences'}: {len(chosen)} sentences, {sum(len(i['signs']) for i in chosen)} signs")
        own = scores(chosen)
        english = scores(chosen, lambda item: "en")
        print("language  rules      precision  recall   (links found correct / found / true)")
        for key in sorted(own):
            for name, result in (("own", own[key]), ("English", english[key])):
                p, r, tp, found, true = result
                print(f"{key:8}  {name:9}  {p:9.3f}  {r:6.3f}   ({tp} / {found} / {true})")
        print(f"recall ratio own / English rules (all): {own['all'][1] / max(english['all'][1], 1e-9):.2f}x; "
              f"precision ratio {own['all'][0] / max(english['all'][0], 1e-9):.2f}x")
    if args.show_errors:
        for item in items:
            truth, found = set(item["signs"]), predicted(item["text"], item["lang"])
            if truth != found:
                print(f"\n{item['publication']} {item['paragraph']}[{item['sentence']}] ({item['lang']}): "
                      f"missed {sorted(truth - found)}, wrong {sorted(found - truth)}\n  {item['text']}")


if __name__ == "__main__":
    main()
