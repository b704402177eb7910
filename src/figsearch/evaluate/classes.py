"""Classification codes cut into levels, so that "same class at depth d" can be asked of two patents.

Levels per scheme (depth 1 is the coarsest):

- CPC / IPC: 1 section ``B``, 2 class ``B26``, 3 subclass ``B26B``, 4 main group ``B26B 21``,
  5 subgroup ``B26B 21/4068``;
- USPC: 1 class ``D28``, 2 subclass ``D28/47``;
- Locarno: 1 class ``28``, 2 subclass ``28-03``.

Offices and readers write the same code in several ways (USPTO XML ``D28 47`` and ``D 2728`` in
fixed columns, ``D1-121`` in lists, ``B26B 21/4068`` or ``B26B0021406800`` for CPC); every form
is normalised here so that equal codes compare equal.
"""

from __future__ import annotations

import re

from figsearch.errors import InputError

#: canonical scheme names (as ``records.Classification.scheme`` holds them) and their depth
SCHEMES: dict[str, int] = {"CPC": 5, "IPC": 5, "USPC": 2, "Locarno": 2}

_IPC_LIKE = re.compile(r"^([A-HY])\s*(\d{2})\s*([A-Z])\s*(?:(\d{1,4})\s*(?:/\s*(\d{1,6}))?)?")
# DocDB's padded form: A47C 0007 020000
_IPC_PADDED = re.compile(r"^([A-HY])(\d{2})([A-Z])(\d{4})(\d{6})$")
_USPC_SEPARATED = re.compile(r"^([A-Z]{0,3})\s*0*(\d+)\s*[-/]\s*(\S+)$")
_LOCARNO = re.compile(r"^(\d{1,2})(?:\s*[-/. ]?\s*(\d{2}))?$")


def canonical_scheme(name: str) -> str:
    """``cpc`` -> ``CPC``; an unknown scheme raises InputError listing the known ones."""
    for scheme in SCHEMES:
        if scheme.lower() == name.strip().lower():
            return scheme
    raise InputError(f"unknown classification scheme {name!r}; choose one of: {', '.join(SCHEMES)}")


def levels(scheme: str, code: str) -> tuple[str, ...]:
    """The code's prefixes from depth 1 down, as far as the code goes; () when unreadable."""
    scheme = canonical_scheme(scheme)
    text = " ".join(code.upper().split()) if scheme != "USPC" else code.upper()
    if scheme in ("CPC", "IPC"):
        return _ipc_levels(text)
    if scheme == "USPC":
        return _uspc_levels(text)
    return _locarno_levels(text)


def shared_depth(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many leading levels two codes have in common."""
    depth = 0
    for x, y in zip(a, b):
        if x != y:
            break
        depth += 1
    return depth


def _ipc_levels(text: str) -> tuple[str, ...]:
    padded = _IPC_PADDED.match(text.replace(" ", ""))
    if padded:
        section, cls, sub, group, subgroup = padded.groups()
        subgroup = subgroup.rstrip("0").ljust(2, "0")
    else:
        match = _IPC_LIKE.match(text)
        if not match:
            return ()
        section, cls, sub, group, subgroup = match.groups()
    out = [section, f"{section}{cls}", f"{section}{cls}{sub}"]
    if group:
        main = f"{out[-1]} {int(group)}"
        out.append(main)
        if subgroup:
            out.append(f"{main}/{subgroup}")
    return tuple(out)


def _uspc_levels(text: str) -> tuple[str, ...]:
    stripped = text.strip()
    if not stripped:
        return ()
    separated = _USPC_SEPARATED.match(stripped)
    if separated:
        letters, digits, sub = separated.groups()
        cls = f"{letters}{int(digits)}"
    elif len(stripped) > 3 or (len(text) > 3 and text[:3].strip()):
        # USPTO XML writes the class in three fixed columns, then the subclass ("D 2728", "D28 47")
        cls = _uspc_class(text[:3])
        sub = text[3:].strip()
    else:
        cls, sub = _uspc_class(stripped), ""
    if not cls:
        return ()
    sub = sub.replace(" ", "").lstrip("0") or ("0" if sub else "")
    return (cls, f"{cls}/{sub}") if sub else (cls,)


def _uspc_class(text: str) -> str:
    compact = text.replace(" ", "")
    match = re.match(r"^([A-Z]{0,3})0*(\d*)([A-Z]?)$", compact)
    if not match or not (match.group(1) or match.group(2)):
        return compact
    letters, digits, suffix = match.groups()
    return f"{letters}{digits}{suffix}"


def _locarno_levels(text: str) -> tuple[str, ...]:
    match = _LOCARNO.match(text.strip())
    if match:
        cls, sub = match.groups()
    else:
        # a printed form such as "LOC (13) Cl. 28-03": the last class-subclass pair
        pairs = re.findall(r"(\d{1,2})\s*[-.]\s*(\d{2})\b", text)
        if not pairs:
            return ()
        cls, sub = pairs[-1]
    cls = f"{int(cls):02d}"
    return (cls, f"{cls}-{sub}") if sub else (cls,)
