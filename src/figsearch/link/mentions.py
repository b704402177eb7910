"""Reference signs mentioned in a sentence: "the rotor blade 12", "rollers 22, 24 and 26", "12-16".

A number is a reference sign when it follows the noun it names ("thermal head 14",
"roller (16)") or continues a list or range that started with one. It is not a sign
when it is a quantity ("12 mm", "of 2 rotors", "about 5"), a decimal or a thousands
figure, part of a date or a year ("in 2005"), or what a figure, claim, table,
equation or patent number refers to ("FIG. 3", "claims 1 to 5", "No. 5,123,456").

German and French (``lang="de"``, ``"fr"``) follow the same rules with their own words:
articles and prepositions ("der", "des", "la", "l'"), label and claim words ("Fig.", "Abb.",
"Figur", "Anspruch", "revendication"), lists and ranges ("und", "bis", "et", "à"), months,
units and counted things ("5 Stück", "10 fois"); numbers with a decimal comma ("2,5 mm") are
quantities. English (the default) is read exactly as before; any other language with the
English rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: a reference sign in the text: "14", "14a", "14'"; an upper-case suffix A-H after two digits or more
#: ("114A", as figsearch.ocr.signs reads it in drawings; "3D" or "5G" are no signs)
#: and "104-N", the last of a numbered series "104-1, 104-2, ..., 104-N" (figsearch.ocr.signs.DASH_LETTERS)
_NUM = r"(?:[1-9]\d{1,3}-[NnMmKk](?!\w)|[1-9]\d{1,3}[A-H]|[1-9]\d{0,3}(?:[a-z]|'{1,2}|′)?)"
#: what may stand between two signs of one numbered series ("104-1, 104-2, ..., 104-N", "104-1 to 104-N")
_SERIES_GAP = re.compile(r"[,\s.…]*(?:(?:and|or|to|through|thru)[,\s.…]*)?")

#: things whose numbers are never reference signs; masked before numbers are read
_KEYWORD_LISTS = re.compile(
    rf"""\b(?:FIGS?|Figs?|figs?|FIGURES?|Figures?|figures?|claims?|Claims?|CLAIMS?|tables?|Tables?|TABLES?
          |equations?|Equations?|Eqs?|eqs?|formula[es]?|Formula[es]?|expressions?|examples?|Examples?
          |paragraphs?|paras?|pages?|cols?\.|Nos?|nos?|numbers?|embodiments?|Embodiments?|steps?(?=\s+\d+\s*(?:of|in)\b))
        \.?\s*\(?\s*\[?\d[\w'′]*\]?\)?(?:\s*(?:,|and|or|to|through|-|–|&)\s*\(?\d[\w'′]*\)?)*""",
    re.VERBOSE,
)
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATES = re.compile(
    rf"\b{_MONTHS}\s+\d{{1,2}},?\s+\d{{4}}\b|\b\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}\b|\b{_MONTHS}\s+\d{{4}}\b"
    r"|\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b"
)
# patent and document numbers, decimals, thousands, versions, ratios: "2003-123456", "5,123,456", "2.5", "1:2"
_OTHER_NUMBERS = re.compile(
    r"\b[A-Z]{2}\s?\d{2,4}[/-]\d{3,}\b|\b\d{1,3}(?:,\d{3})+\b|\d+\.\d+|\b\d+\s?[:/]\s?\d+\b|\b\d{5,}\b"
)
_CANDIDATE = re.compile(
    rf"(?<![\w.,/+-])(?P<first>{_NUM})(?:\s*(?P<dash>-|–|to|through|thru)\s*(?P<last>{_NUM}))?(?![\w/]|[.,:]\d|-\d)"
)
_UNITS = frozenset(
    """mm cm m km µm um μm nm pm in inch inches ft feet foot mil mils yd g kg mg µg t lb lbs oz n kn nm pa kpa mpa gpa
    bar mbar psi torr atm v mv kv µv a ma µa w kw mw j kj hz khz mhz ghz s sec secs second seconds ms µs ns min mins
    minute minutes h hr hrs hour hours day days week weeks month months year years % ° deg degree degrees °c °f k
    rpm dpi ppi lpi bit bits byte bytes kb mb gb tb db l ml ul µl cc mol mmol wt vol ppm ppb px pixel pixels dot dots
    times fold x × mesh gauge awg cal kcal lm lx cd ohm ohms ω kω mω f µf uf nf pf hp nmi mph kmh kph""".split()
)
# counted things: "2 rows", "12 teeth" are quantities (a sign follows the noun it names, never precedes it)
_COUNT_NOUNS = frozenset(
    """rows columns layers lines pixels dots steps parts pieces teeth blades rotors sides revolutions
    cycles stages levels bits channels elements units holes slots pairs sheets pages colors
    colours frames rollers wheels pins screws bolts legs arms plates members segments sections
    portions regions zones areas times""".split()
)
# words after which a number is a quantity, an ordinal position or a citation, never a sign
_FUNCTION_WORDS = frozenset(
    """a an the said this that these those each every any all some many several no both either neither
    of to from by at in on onto into over under above below between among within without through via per
    with than as about around approximately approx nearly almost roughly substantially least most only
    and or nor but if then when where while which who whose whom what
    is are was were be been being has have had having do does did
    comprise comprises comprised comprising include includes included including contain contains containing
    provide provides provided providing use uses used using
    equal equals equaling exceed exceeds exceeding reach reaches total totals
    year years month months day days week weeks hour hours minute minutes second seconds
    mode modes type types version versions level levels group groups order rank class size
    up down out off new plus minus times multiplied divided
    show shows showed shown showing illustrate illustrates depict depicts represent represents indicate indicates
    define defines form forms require requires take takes give gives yield yields produce produces generate
    generates measure measures receive receives store stores hold holds carry carries set sets contain
    reach count counts number numbers amount amounts
    first second third fourth fifth one two three four five six seven eight nine ten
    more less fewer other another such same further additional respective corresponding""".split()
)
# ordinals end no name ("first guide roller 22") although a number right after one is no sign
_ORDINALS = frozenset("first second third fourth fifth".split())
_CONNECTORS = frozenset({",", "and", "or", "&", "as well as", "/", ", and", ", or", "and/or"})
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


@dataclass(frozen=True)
class _Rules:
    """What decides a language's reference signs; English's are the module constants above."""

    keyword_lists: re.Pattern
    dates: re.Pattern
    other_numbers: re.Pattern
    candidate: re.Pattern
    units: frozenset
    count_nouns: frozenset
    function_words: frozenset
    ordinals: frozenset
    connectors: frozenset
    word: re.Pattern  # a word that can be part of a name
    token: re.Pattern  # the last token of a text (word, number or punctuation)
    year_words: frozenset  # "in 1998": a year, not a sign
    #: prepositions that may sit inside a name ("rouleau de pression 14"): French
    inner: frozenset = frozenset()
    words_limit: int = 4


_ENGLISH = _Rules(
    _KEYWORD_LISTS, _DATES, _OTHER_NUMBERS, _CANDIDATE, _UNITS, _COUNT_NOUNS, _FUNCTION_WORDS, _ORDINALS,
    _CONNECTORS, _WORD, re.compile(r"([A-Za-z][A-Za-z-]*|\d\S*|[^\sA-Za-z\d])\s*$"),
    frozenset({"in", "since", "until", "year"}),
)

_LETTER = r"[^\W\d_]"
_UWORD = re.compile(rf"{_LETTER}(?:{_LETTER}|-)*")
_UTOKEN = re.compile(rf"({_LETTER}(?:{_LETTER}|-)*|\d\S*|[^\s\w]|_)\s*$")
# label, claim, table ... words whose numbers are never signs, per language
_LABEL_WORDS = {
    "de": r"""FIG|Fig|fig|FIGS|Figs|figs|Figur|Figuren|FIGUR|FIGUREN|Abb|Abbildung|Abbildungen|Anspruch|Ansprüche|Ansprüchen
          |Anspruchs|Patentanspruch|Patentansprüche|Patentansprüchen|Tabelle|Tabellen|Tab|Gleichung|Gleichungen|Gl|Formel|Formeln
          |Beispiel|Beispiele|Beispiels|Beispielen|Absatz|Absätze|Abs|Seite|Seiten|Spalte|Spalten|Sp|Nr|Nummer|Nummern
          |Ausführungsform|Ausführungsformen|Ausführungsbeispiel|Ausführungsbeispiele|Ausführungsbeispiels|Zeile|Zeilen
          |Schritt(?=\s+\d+\s*(?:des|der|von)\b)|Klasse|Kapitel|Version|Typ|DE|EP|US|WO|JP|Patent|Patents|Patentschrift""",
    "fr": r"""FIG|Fig|fig|FIGS|Figs|figs|Figure|Figures|figure|figures|FIGURE|FIGURES|revendication|revendications|Revendication
          |Revendications|REVENDICATIONS|tableau|tableaux|Tableau|Tableaux|équation|équations|éq|formule|formules|Formule
          |exemple|exemples|Exemple|Exemples|paragraphe|paragraphes|page|pages|colonne|colonnes|col|n°|N°|no|No|numéro|numéros
          |mode\s+de\s+réalisation|modes\s+de\s+réalisation|ligne|lignes|étape(?=\s+\d+\s*(?:de|du|des)\b)|classe|chapitre
          |version|type|brevet|brevets|demande""",
}
_LIST_WORDS = {"de": r"und|oder|bis|sowie|u\.|&", "fr": r"et|ou|à|&"}


def _keyword_lists(lang: str) -> re.Pattern:
    return re.compile(
        rf"""(?<!\w)(?:{_LABEL_WORDS[lang]})\.?\s*\(?\s*\[?\d[\w'′]*\]?\)?"""
        rf"""(?:\s*(?:,|{_LIST_WORDS[lang]}|-|–)\s*\(?\d[\w'′]*\)?)*""",
        re.VERBOSE,
    )


_MONTH_NAMES = {
    "de": r"(?:Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|"
          r"Jan|Feb|Mär|Apr|Jun|Jul|Aug|Sep|Sept|Okt|Nov|Dez)\.?",
    "fr": r"(?:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre|"
          r"janv|févr|avr|juil|sept|oct|nov|déc)\.?",
}


def _dates(lang: str) -> re.Pattern:
    months = _MONTH_NAMES[lang]
    return re.compile(
        rf"\b\d{{1,2}}(?:\.|er)?\s+{months}\s+\d{{4}}\b|(?<!\w){months}\s+\d{{4}}\b"
        r"|\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b",
        re.IGNORECASE,
    )


# the English ones plus decimal commas ("2,5") and thousands with dots or spaces ("1.000", "1 000 000")
_OTHER_NUMBERS_DE_FR = re.compile(
    _OTHER_NUMBERS.pattern + r"|\b\d+,\d+\b|\b\d{1,3}(?:[.\u00a0\u202f]\d{3})+\b|\b\d{1,3}(?: \d{3})+(?![\d,])"
)
_LIST_RANGE = {"de": r"bis", "fr": r"à"}


# German texts often print a suffix apart: "Abschnitt 4 a" is the sign 4a ("d. h.", "z. B." are not suffixes)
_NUM_DE = r"[1-9]\d{0,3}(?:[a-z]|'{1,2}|′| [a-h](?![\w'’]|\.\s?[a-zA-Z]\.))?"


def _candidate(lang: str) -> re.Pattern:
    number = _NUM_DE if lang == "de" else _NUM
    return re.compile(
        rf"(?<![\w.,/+-])(?P<first>{number})(?:\s*(?P<dash>-|–|{_LIST_RANGE[lang]})\s*(?P<last>{number}))?"
        r"(?![\w/]|[.,:]\d|-\d)"
    )


# "Umlenkeinrichtung 7,18": two signs printed with a bare comma, which a decimal comma also is; it is
# a list when a name precedes it, the numbers rise and no unit follows (then "2,5 mm" stays a quantity)
_BARE_COMMA_LIST = re.compile(rf"(?<=[^\W\d_]{{2}} )(?P<a>[1-9]\d{{0,2}}[a-z]?),(?P<b>[1-9]\d{{0,2}}[a-z]?)(?![\w,.]\d?)")
_LIST_MARK = "\x1f"


# English unit words that are common words here: German "in", "um", French "a" ("le rouleau 14 a une surface")
_UNITS_DE = (_UNITS - {"in", "inch", "um"}) | frozenset(
    """hpa stück stk grad prozent promille sekunde sekunden minute minuten stunde stunden tag tage tagen woche wochen
    monat monate monaten jahr jahre jahren umdrehungen u/min upm mal fach mikrometer millimeter zentimeter
    meter kilogramm gramm liter volt watt ampere""".split()
)
_UNITS_FR = (_UNITS - {"a"}) | frozenset(
    """hpa pièce pièces degré degrés pourcent seconde secondes heure heures jour jours semaine semaines mois an ans
    année années tour tours tr/min fois micromètres millimètres centimètres mètres kilogrammes grammes litre
    litres""".split()
)
_COUNT_NOUNS_DE = _COUNT_NOUNS | frozenset(
    """reihen spalten schichten lagen linien zeilen pixel punkte schritte teile zähne schaufeln seiten stufen ebenen
    kanäle elemente einheiten löcher bohrungen schlitze paare blätter bögen farben rollen walzen räder stifte
    schrauben bolzen beine arme platten segmente abschnitte bereiche zonen flächen male exemplare""".split()
)
_COUNT_NOUNS_FR = _COUNT_NOUNS | frozenset(
    """rangées colonnes couches lignes pixels points étapes pièces dents pales côtés tours cycles étages niveaux canaux
    éléments unités trous fentes paires feuilles pages couleurs rouleaux roues broches vis boulons pieds bras
    plaques segments sections parties régions zones surfaces fois exemplaires""".split()
)
_FUNCTION_WORDS_DE = frozenset(
    """der die das des dem den ein eine einer eines einem einen kein keine keiner keines keinem keinen
    dieser diese dieses diesem diesen jener jene jenes jeder jede jedes jedem jeden alle allen aller sämtliche
    einige einigen mehrere mehreren viele vielen beide beiden beider weitere weiteren weiterer anderen andere anderer
    welcher welche welches welchem welchen sein seine seiner seines seinem seinen ihr ihre ihrer ihres ihrem ihren
    von vom zu zum zur mit bei beim aus nach seit in im ins an am ans auf über unter vor hinter neben zwischen durch
    für gegen ohne um bis pro je gemäß nach laut entlang innerhalb außerhalb oberhalb unterhalb mittels während
    und oder aber sowie bzw sondern als wie wenn falls dass ob sodass so also
    ist sind war waren wird werden wurde wurden worden hat haben hatte hatten sein ist kann können muss müssen soll
    sollen darf weist weisen umfasst umfassen umfasste enthält enthalten aufweist aufweisen besitzt besitzen
    zeigt zeigen gezeigt dargestellt darstellt darstellen veranschaulicht beträgt betragen erreicht ergibt
    etwa ca circa ungefähr rund annähernd nahezu fast mindestens höchstens wenigstens maximal minimal nur genau
    jeweils insgesamt zusätzlich ebenfalls auch noch bereits etwa gleich gleiche gleichen
    jahr jahre jahren jahres monat monate tag tage stunde stunden minute minuten sekunde sekunden woche wochen
    typ typs version modus gruppe klasse größe stufe ordnung rang nummer anzahl zahl menge
    plus minus mal
    ersten erste erster erstes zweite zweiter zweites zweiten dritte dritter drittes dritten vierte vierter viertes
    vierten fünfte fünfter fünftes fünften
    eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf
    mehr weniger andere solche solcher solches gleichen entsprechende entsprechenden jeweilige jeweiligen""".split()
)
_FUNCTION_WORDS_FR = frozenset(
    """le la les l un une des du de d au aux ce cet cette ces son sa ses leur leurs mon ma mes notre nos votre vos
    chaque tout tous toute toutes plusieurs quelques aucun aucune certain certains certaines divers diverses
    à en dans sur sous par pour avec sans entre vers chez contre selon depuis jusqu jusque lors pendant après avant
    devant derrière parmi via suivant
    et ou mais puis donc car ni que qu qui dont où lequel laquelle lesquels lesquelles auquel duquel
    est sont était étaient être été a ont avait avaient peut peuvent doit doivent comprend comprennent comprenant
    comporte comportent comportant présente présentent inclut incluent contient contiennent possède possèdent
    montre montrent montré représente représentent représenté illustre illustrent illustré
    environ approximativement près presque moins plus au moins seulement exactement égal égale égaux
    année années an ans mois jour jours heure heures minute minutes seconde secondes semaine semaines
    type types version versions mode niveau groupe classe taille ordre rang numéro nombre quantité
    premier premiers première premières deuxième deuxièmes second seconde seconds secondes troisième troisièmes
    quatrième cinquième
    un deux trois quatre cinq six sept huit neuf dix onze douze
    autre autres même mêmes tel telle tels telles respectif respective respectifs respectives correspondant
    correspondante correspondants""".split()
)
_ORDINALS_DE = frozenset(
    """erste erster erstes ersten zweite zweiter zweites zweiten dritte dritter drittes dritten vierte vierter viertes
    vierten fünfte fünfter fünftes fünften""".split()
)
_ORDINALS_FR = frozenset(
    """premier premiers première premières deuxième deuxièmes second seconde seconds secondes troisième troisièmes
    quatrième cinquième""".split()
)


@lru_cache(maxsize=None)
def rules_for(lang: str | None) -> _Rules:
    """The rules for ``lang``: English's for "en", None and every language without rules of its own."""
    if lang == "de":
        return _Rules(
            _keyword_lists("de"), _dates("de"), _OTHER_NUMBERS_DE_FR, _candidate("de"), _UNITS_DE,
            _COUNT_NOUNS_DE, _FUNCTION_WORDS_DE, _ORDINALS_DE,
            frozenset({",", "und", "oder", "&", "sowie", "/", ", und", ", oder", "bzw.", "bzw", "und/oder", ";", _LIST_MARK}),
            _UWORD, _UTOKEN, frozenset({"in", "im", "seit", "bis", "jahr", "jahre", "jahres", "von", "ab"}),
        )
    if lang == "fr":
        return _Rules(
            _keyword_lists("fr"), _dates("fr"), _OTHER_NUMBERS_DE_FR, _candidate("fr"), _UNITS_FR,
            _COUNT_NOUNS_FR, _FUNCTION_WORDS_FR, _ORDINALS_FR,
            frozenset({",", "et", "ou", "&", "ainsi que", "/", ", et", ", ou", "et/ou", ";", _LIST_MARK}),
            _UWORD, _UTOKEN, frozenset({"en", "depuis", "année", "an", "jusqu", "dès"}),
            inner=frozenset({"de", "d", "du", "des", "à", "au", "aux", "en"}), words_limit=8,
        )
    return _ENGLISH


@dataclass(frozen=True)
class Mention:
    """One reference sign (or a range of them) named in a sentence."""

    sign: str  # "14a"; for a range its first sign
    start: int
    end: int
    last: str | None = None  # the range's last sign ("12-16" -> "16")
    term: str | None = None  # the noun phrase naming it ("thermal head"), when one precedes it

    def covers(self, sign: str) -> bool:
        """Whether ``sign`` read in a drawing is what this mention names.

        ``14`` and ``14a`` match each other (the part and its sub-parts); ``14a`` and
        ``14b`` do not; a range ``12-16`` covers every sign from 12 to 16.
        """
        number, suffix = split_sign(sign)
        first_number, first_suffix = split_sign(self.sign)
        if self.last is None:
            return number == first_number and (suffix == first_suffix or not suffix or not first_suffix)
        last_number, last_suffix = split_sign(self.last)
        if first_number == last_number:  # "14a-14d"
            return number == first_number and (not suffix or first_suffix <= suffix <= last_suffix)
        return first_number <= number <= last_number


def named_signs(mention: Mention) -> list[str]:
    """The single signs a mention names: itself, or every sign of its range ("2a-2d" -> 2a, 2b, 2c, 2d)."""
    if mention.last is None:
        return [mention.sign]
    (n1, s1), (n2, s2) = split_sign(mention.sign), split_sign(mention.last)
    if n1 == n2 and len(s1) == len(s2) == 1 and s1 < s2:
        return [f"{n1}{chr(c)}" for c in range(ord(s1), ord(s2) + 1)]
    if n1 < n2 and not s1 and not s2:
        return [str(n) for n in range(n1, n2 + 1)]
    return [mention.sign, mention.last]


def split_sign(sign: str) -> tuple[int, str]:
    match = re.match(r"(\d+)(.*)", sign)
    if match is None:
        return (0, sign)
    return int(match.group(1)), match.group(2)


def _mask(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _last_run(text: str) -> int:
    """Where the last run of non-space characters of ``text`` begins (less one), or 0.

    A token followed only by spaces lies inside that run, so searching for it from here finds the
    same match as searching the whole text, without the quadratic cost of an end-anchored search
    over a 40,000-character sequence listing.
    """
    i = len(text.rstrip()) - 1
    while i >= 0 and not text[i].isspace():
        i -= 1
    return max(i, 0)


def _words_before(text: str, end: int, limit: int = 4, rules: _Rules = _ENGLISH) -> tuple[list[str], str]:
    """The words just before ``end`` (nearest last), and the non-word token right before the number."""
    before = text[:end].rstrip()
    if before.endswith("("):
        before = before[:-1].rstrip()
    tail_token = before[-1:] if before and not before[-1].isalnum() else ""
    words: list[str] = []
    cursor = len(before)
    while len(words) < limit and cursor > 0:
        segment = before[:cursor]
        match = rules.token.search(segment, _last_run(segment))
        if match is None:
            break
        words.append(match.group(1))
        cursor = match.start()
    return words, tail_token


def _term(words: list[str], rules: _Rules = _ENGLISH) -> str | None:
    """The noun phrase among ``words`` (nearest first): letters only, stopping at a function word.

    French names may hold a preposition between two nouns ("rouleau de pression",
    "dispositif d'entraînement"); it is kept when a noun precedes it.
    """
    phrase: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        lower = word.lower()
        if rules.word.fullmatch(word) and not (lower in rules.function_words and lower not in rules.ordinals):
            phrase.append(word)
            i += 1
            continue
        if rules.inner and phrase:
            if word in ("'", "’") and i + 1 < len(words) and words[i + 1].lower() == "d":
                preposition, after = words[i + 1] + "'", i + 2
            elif lower in rules.inner:
                preposition, after = word, i + 1
            else:
                break
            if after < len(words) and rules.word.fullmatch(words[after]) and \
                    words[after].lower() not in rules.function_words:
                phrase.append(preposition)
                i = after
                continue
        break
    if not phrase:
        return None
    return " ".join(reversed(phrase)).replace("' ", "'")


def _followed_by_unit(text: str, end: int, rules: _Rules = _ENGLISH) -> bool:
    rest = text[end:end + 16]
    if rules is not _ENGLISH and re.match(r"\s+[\"“„«]\s?[^\W\d_]", rest):
        return False  # an opening quote ('Raum 170 "erzeugten"'), not inches
    if re.match(r"\s*(%|°|‰|″|\"|×|x\s*\d)", rest):
        return True
    match = re.match(r"\s*([^\s,.;:()]+)", rest)
    word = match.group(1).lower().rstrip(".") if match else ""
    return word in rules.units or word in rules.count_nouns


def _mark_bare_comma_lists(sentence: str, rules: _Rules) -> str:
    def mark(match: re.Match) -> str:
        words, _ = _words_before(sentence, match.start(), 1, rules)
        (n1, _s1), (n2, _s2) = split_sign(match.group("a")), split_sign(match.group("b"))
        if not words or words[0].lower() in rules.function_words or not n1 < n2 or \
                _followed_by_unit(sentence, match.end(), rules):
            return match.group()
        return f"{match.group('a')}{_LIST_MARK}{match.group('b')}"

    return _BARE_COMMA_LIST.sub(mark, sentence)


#: any digit, as ``\d`` reads one (every Unicode digit): a superset of the signs' first characters
_ANY_DIGIT = re.compile(r"\d")


def find_mentions(sentence: str, lang: str | None = "en") -> list[Mention]:
    """The reference signs named in ``sentence``, in order.

    ``lang``: the sentence's language; "de" and "fr" have rules of their own, every other
    language (and None) is read with the English ones.
    """
    if not _ANY_DIGIT.search(sentence):
        return []  # every sign begins with a digit (``_NUM``, ``_NUM_DE``): 4 in 10 description sentences have none
    rules = rules_for(lang)
    if rules is not _ENGLISH:
        sentence = _mark_bare_comma_lists(sentence, rules)
    text = _mask(_mask(_mask(sentence, rules.dates), rules.keyword_lists), rules.other_numbers)
    mentions: list[Mention] = []
    chain_term: str | None = None
    chain_end = -1
    chain_sign = ""
    for match in rules.candidate.finditer(text):
        start, end = match.span()
        first, last = match.group("first"), match.group("last")
        if last is not None:
            (n1, s1), (n2, s2) = split_sign(first), split_sign(last)
            if match.group("dash") in "-–" and not s1 and not s2 and n2 < n1 and n2 < 100:
                first, last = f"{first}-{n2}", None  # "102-1" is one sign with a numbered suffix
            elif not (n1 < n2 <= n1 + 200 or (n1 == n2 and s1 < s2)):
                end = start + len(match.group("first"))
                last = None
        if _followed_by_unit(text, end, rules):
            chain_term, chain_end = None, -1
            continue
        if re.search(r"[=<>±≤≥~≈]\s*\(?$", text[:start]) or re.match(r"\s*[=<>≤≥]", text[end:]):
            continue
        words, token = _words_before(text, start, rules.words_limit, rules)
        previous = words[0].lower() if words else ""
        between = text[chain_end:start].strip(" (").lower() if chain_end >= 0 else None
        if between is not None and between in rules.connectors:
            term = chain_term  # "rollers 22, 24 and 26": a list goes on
        elif between is not None and _same_series(chain_sign, first) and _SERIES_GAP.fullmatch(between):
            term = chain_term  # "devices 104-1, 104-2, ..., 104-N", "104-1 through 104-N"
        elif len(previous) > 1 and rules.word.fullmatch(words[0]) and previous not in rules.function_words:
            # (a single letter before a number is a variable or an axis: "H 2", "X 1")
            term = _term(words, rules)
        elif rules is not _ENGLISH and previous in rules.ordinals and text[:start].rstrip().endswith("("):
            term = None  # "les premier (122) et deuxième (123) faisceaux": a sign in brackets after an ordinal
        else:
            chain_term, chain_end = None, -1
            continue
        if len(first) == 4 and first[:2] in ("19", "20") and previous in rules.year_words:
            continue
        if rules is not _ENGLISH:
            first, last = first.replace(" ", ""), last.replace(" ", "") if last else last
        mentions.append(Mention(first, start, end, last, term))
        chain_term, chain_end, chain_sign = term, end, first
    return mentions


def _same_series(previous: str, sign: str) -> bool:
    """Whether ``sign`` continues a numbered series that ``previous`` belongs to: both the same number
    with a dash suffix ("104-2" after "104-1", "104-N" after "104-2")."""
    (n1, s1), (n2, s2) = split_sign(previous), split_sign(sign)
    return bool(previous) and n1 == n2 and s1.startswith("-") and s2.startswith("-")


def mentioned_signs(sentences: list[str], lang: str | None = "en") -> set[str]:
    """Every single sign (not range) named anywhere in ``sentences``: the patent's sign vocabulary."""
    found: set[str] = set()
    for sentence in sentences:
        for mention in find_mentions(sentence, lang):
            found.add(mention.sign)
            if mention.last:
                found.add(mention.last)
    return found
