"""Capture domains and dance genres: names and ids, the one table every part of FlowMimic imports.

Domain ids index `DOMAINS` (0 = AIST++, 1 = MVHumanNet). Genre ids: 0 = unknown (all of
MVHumanNet), then AIST++'s ten genre codes in the order below get 1..10
(https://google.github.io/aistplusplus_dataset/factsfigures.html).
"""

from __future__ import annotations

DOMAINS: tuple[str, ...] = ("aist", "mvh")   # domain id = index here
DOMAIN_NAMES: tuple[str, ...] = ("AIST++", "MVHumanNet")
N_DOMAINS = len(DOMAINS)

GENRES: tuple[str, ...] = ("gBR", "gPO", "gLO", "gMH", "gLH", "gHO", "gWA", "gKR", "gJS", "gJB")
GENRE_NAMES: tuple[str, ...] = ("Break", "Pop", "Lock", "Middle Hip-hop", "LA-style Hip-hop", "House",
                                "Waack", "Krump", "Street Jazz", "Ballet Jazz")
UNKNOWN_GENRE = 0
N_GENRES = len(GENRES)


def genre_id(code: str) -> int:
    """'gBR' -> 1 ... 'gJB' -> 10; anything else -> 0 (unknown)."""
    return GENRES.index(code) + 1 if code in GENRES else UNKNOWN_GENRE


def genre_name(gid: int) -> str:
    return GENRE_NAMES[gid - 1] if 1 <= gid <= N_GENRES else "unknown"


def parse_genre(text: str | int) -> int:
    """A genre given as code ('gBR', any case), name ('Break', any case) or id (1..10) -> its id.

    Raises ValueError listing the valid genres for anything else (0 = unknown is not a genre).
    """
    key = str(text).strip().lower()
    for gid, (code, name) in enumerate(zip(GENRES, GENRE_NAMES), start=1):
        if key in (code.lower(), name.lower(), str(gid)):
            return gid
    valid = ", ".join(f"{gid} {code} {name!r}" for gid, (code, name) in enumerate(zip(GENRES, GENRE_NAMES), start=1))
    raise ValueError(f"unknown genre {str(text)!r}; valid genres (id, code or name): {valid}")


def parse_domain(text: str) -> int:
    """'aist' / 'mvh' (any case) -> domain id; ValueError listing the valid domains otherwise."""
    key = str(text).strip().lower()
    if key not in DOMAINS:
        raise ValueError(f"unknown domain {text!r}; valid domains: {', '.join(DOMAINS)}")
    return DOMAINS.index(key)
