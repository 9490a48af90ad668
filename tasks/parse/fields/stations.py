"""Canonical stations: the sending post as reference ids spell it (`ASTANA`, `THEHAGUE`, `STATE`).

Telegrams name a post in several ways: the FM line (`AMEMBASSY THE HAGUE`,
`SECSTATE WASHDC`), the serial line (`SAO PAULO 001234`), REF lines (`SECSTATE 15113`,
`HCMC 45`) and the release metadata (`Embassy The Hague`). All of them map to one
station here, so that `station`, `reference_id` and `references.id` join.
"""

from __future__ import annotations

import regex

from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.station_table import STATIONS

# Short and old telegram names of posts whose station is spelled otherwise in ids.
TELEGRAM_ALIASES = {
    "SECSTATE": "STATE",
    "SECSTATEWASHDC": "STATE",
    "HK": "HONGKONG",
    "HCMC": "HOCHIMINHCITY",
    "RIO": "RIODEJANEIRO",
    "UNVIE": "UNVIEVIENNA",
    "HAGUE": "THEHAGUE",
    "USUN": "USUNNEWYORK",
    "USUNNY": "USUNNEWYORK",
    "USEUBRUSSELS": "BRUSSELS",
    "USEU": "BRUSSELS",
    "USNATOBRUSSELS": "USNATO",
}
# Words before the place in FM lines and release Origin texts: the post's kind.
_POST_KIND = guard.compile(
    r"^(?:AMEMBASSY|AMEMB|AMCONSUL|AMCONGEN|USMISSION|USINT|USLO|USOFFICE|USDEL|AIT|"
    r"EMBASSY|CONSULATE(?:[ \t]+GENERAL)?|(?:US[ \t]+)?MISSION(?:[ \t]+TO)?|US[ \t]+INTERESTS[ \t]+SECTION|"
    r"AMERICAN[ \t]+INSTITUTE[ \t]+TAIWAN,?|REO|BRANCH[ \t]+OFFICE)[ \t]+",
    regex.IGNORECASE,
)
# `SECSTATE WASHDC`, `Secretary of State`: the Department itself.
_DEPARTMENT = guard.compile(r"^(?:SECSTATE\b|SECRETARY[ \t]+OF[ \t]+STATE\b)", regex.IGNORECASE)
# Office suffixes after the place: `AMEMBASSY MEXICO//POL//`.
_OFFICE_SUFFIX = guard.compile(r"[ \t]*//.*$")
_NOT_LETTERS = guard.compile(r"[^A-Z]+")

# The release's Origin text -> its station (the station with most cables when several).
_BY_ORIGIN: dict[str, str] = {}
for _station, (_origin, _cables) in sorted(STATIONS.items(), key=lambda item: item[1][1]):
    _BY_ORIGIN[_origin.casefold()] = _station


def squash(name: str) -> str:
    """Upper case, letters only: `ST. PETERSBURG` -> `STPETERSBURG`, `N'DJAMENA` -> `NDJAMENA`."""
    return _NOT_LETTERS.sub("", name.upper())


def canonical_station(name: str | None) -> str | None:
    """A station as written in a telegram (`SECSTATE`, `THE HAGUE`, `HCMC`) in its id spelling."""
    if not name:
        return None
    squashed = squash(name)
    if not squashed:
        return None
    return TELEGRAM_ALIASES.get(squashed, squashed)


def station_from_post(post: str | None) -> str | None:
    """The station of a post named by an FM line or a release Origin text.

    `AMEMBASSY ASTANA` -> ASTANA, `SECSTATE WASHDC` -> STATE, `USMISSION USUN NEW YORK`
    -> USUNNEWYORK, `Embassy The Hague` -> THEHAGUE, `AIT TAIPEI` -> AITTAIPEI (the
    table knows it). None when the text names no post kind or known post.
    """
    if not post:
        return None
    post = _OFFICE_SUFFIX.sub("", " ".join(post.split()))
    if _DEPARTMENT.match(post):
        return "STATE"
    known = _BY_ORIGIN.get(post.casefold())
    if known:
        return known
    squashed = squash(post)
    if squashed in STATIONS:
        return squashed
    place = _POST_KIND.sub("", post)
    if place == post:
        aliased = TELEGRAM_ALIASES.get(squashed)
        return aliased
    return canonical_station(place)


def origin_of_station(station: str | None) -> str | None:
    """The release's usual Origin text of a station (`THEHAGUE` -> `Embassy The Hague`)."""
    if station is None:
        return None
    known = STATIONS.get(station)
    return known[0] if known else None
