"""What linking needs from one patent's description, and the links of a figure's signs and label.

``PatentText.of(patent)`` splits the description into sentences, finds the reference signs they
mention, the brief description of each figure and the sentences that name a figure; ``links``
then says which sentences belong to a figure read with these signs. Reading the drawings and
storing the results is the pipeline's job (figsearch.pipeline.signs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from figsearch.fsutil import sha256_bytes
from figsearch.link.glossary import brief_descriptions, label_keys, label_mentions
from figsearch.link.mentions import Mention, find_mentions, split_sign
from figsearch.link.sentences import description_sentences
from figsearch.records import Patent, ReferenceSign, Section, Sentence
from figsearch.records import SentenceLink

NUMBER = "number"  # a numeral read in a drawing that the description does not use as a sign


def cited(sign: str, vocabulary: set[str]) -> bool:
    """Whether the description uses ``sign`` as a reference sign.

    Exact on purpose: a drawing's ``504a`` that the text never names is not one of its signs
    (the text's ``504`` still links to sentences about 504 through the numeral ``504``).
    """
    return sign in vocabulary


@dataclass
class PatentText:
    """What linking needs from one patent's description, computed once per patent."""

    sentences: list[Sentence]
    mentions: list[list[Mention]]
    vocabulary: set[str]
    brief: dict[str, int]  # figure number -> brief-description sentence index
    label_refs: dict[str, list[int]]  # figure number -> sentences that refer to it
    text_sha256: str
    #: the language the description is read in (its paragraphs' most common one): "en", "de", "fr", ...
    lang: str = "en"

    @classmethod
    def of(cls, patent: Patent) -> PatentText:
        # imported here: ``figsearch.ingest`` imports every document reader, which the OCR readers'
        # forkserver, importing this module with ``figsearch.pipeline.signs``, does not need
        from figsearch.ingest.language import description_language, linking_language, normalise_code

        description = [p for p in patent.paragraphs if p.section == Section.DESCRIPTION]
        lang = linking_language(description_language(description, normalise_code(patent.lang or patent.language)))
        # the language is part of the digest (German text is relinked by German rules), except
        # English's, so that collections linked before languages were read keep their links
        digest = text_digest([(p.number, p.text) for p in description] + ([("lang", lang)] if lang != "en" else []))
        sentences = description_sentences(patent.publication_number, description, lang)
        mentions = [find_mentions(s.text, lang) for s in sentences]
        vocabulary = {m.sign for ms in mentions for m in ms if m.last is None}
        return cls(sentences, mentions, vocabulary, brief_descriptions(sentences, lang),
                   label_mentions(sentences, lang), digest, lang)

    def classify(self, signs: list[ReferenceSign]) -> list[ReferenceSign]:
        """Numerals the description does not use become kind ``number`` (axis ticks, table values)."""
        if not self.sentences:
            return signs  # no description to check against (e.g. an image without text): keep what was read
        # A description that cites no numeral (a design patent's) leaves every numeral unlinked:
        # there, numerals read are the dashes of broken lines and stipple (issue 14's phantom signs).
        return [
            ReferenceSign(s.text, NUMBER, s.box, s.confidence)
            if s.kind == "numeral" and not cited(s.text, self.vocabulary) else s
            for s in signs
        ]

    def links(self, label: str | None, signs: list[ReferenceSign]) -> list[SentenceLink]:
        numerals = sorted({s.text for s in signs if s.kind == "numeral"})
        labels = set(label_keys(label))
        for s in signs:
            if s.kind == "figure_label":
                labels.update(label_keys(s.text))
        out: list[SentenceLink] = []
        for key in sorted(labels):
            if key in self.brief:
                out.append(SentenceLink(self.brief[key], "brief_description"))
            out += [SentenceLink(i, "label") for i in self.label_refs.get(key, []) if i != self.brief.get(key)]
        # each numeral checked only against the sentences whose mentions can cover it (those that
        # name its number, and ranges), not against every sentence: long descriptions have hundreds
        found: dict[int, list[str]] = {}
        for sign in numerals:
            for position in self._candidates(split_sign(sign)[0]):
                if any(m.covers(sign) for m in self.mentions[position]):
                    found.setdefault(position, []).append(sign)
        for position in sorted(found):  # sentence order, then the numerals' order, as before
            out += [SentenceLink(self.sentences[position].index, "sign", sign) for sign in found[position]]
        return out

    def _candidates(self, number: int) -> list[int]:
        """Positions of the sentences with a mention that may cover a sign of this number."""
        by_number, ranges = self._mention_index
        return sorted(set(by_number.get(number, ())).union(p for first, last, p in ranges if first <= number <= last))

    @cached_property
    def _mention_index(self) -> tuple[dict[int, list[int]], list[tuple[int, int, int]]]:
        """(number -> sentences naming a sign of that number (one sign, or a range within it: "14a-14d"),
        the ranges across numbers as (first number, last number, sentence))."""
        by_number: dict[int, list[int]] = {}
        ranges: list[tuple[int, int, int]] = []
        for position, mentions in enumerate(self.mentions):
            for m in mentions:
                first = split_sign(m.sign)[0]
                last = first if m.last is None else split_sign(m.last)[0]
                if first == last:
                    by_number.setdefault(first, []).append(position)
                else:
                    ranges.append((first, last, position))
        return by_number, ranges


def text_digest(paragraphs: list[tuple]) -> str:
    """Digest of a description's (number, text) paragraphs: the sentences are rebuilt when it changes."""
    return sha256_bytes(json.dumps([list(p) for p in paragraphs]).encode())


def as_numerals(signs: list[ReferenceSign]) -> list[ReferenceSign]:
    """Signs as read, before ``classify`` set aside the numbers the description does not use."""
    return [ReferenceSign(s.text, "numeral", s.box, s.confidence) if s.kind == NUMBER else s for s in signs]


