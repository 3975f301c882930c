"""Search box text -> date constraints plus free-text terms.

"dog june 2016" is the term "dog" in June 2016; "beach 2015" is "beach" in 2015; "2015-06-12" is
one day; "summer 2015" is June-August 2015 (northern-hemisphere seasons: the owner's calendar, not
the photo's hemisphere, is unknown here). What is left becomes the terms, normalised: case-folded,
accents removed, possessives dropped ("Anna's" -> "anna").
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

MIN_YEAR, MAX_YEAR = 1900, 2099

_MONTHS: dict[str, int] = {}
for _i in range(1, 13):
    _MONTHS[calendar.month_name[_i].lower()] = _i
    _MONTHS[calendar.month_abbr[_i].lower()] = _i
_MONTHS["sept"] = 9

_SEASONS: dict[str, set[int]] = {
    "spring": {3, 4, 5},
    "summer": {6, 7, 8},
    "autumn": {9, 10, 11},
    "fall": {9, 10, 11},
    "winter": {12, 1, 2},
}

# Words that carry no meaning in a photo search ("photos of anna in june").
STOPWORDS = frozenset(
    {"a", "an", "and", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to"}
    | {"with", "my", "our", "me", "us", "photo", "photos", "picture", "pictures", "pic", "pics"}
    | {"image", "images", "video", "videos", "shot", "shots"}
)

_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_ISO_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^(\d{4})$")
_DECADE = re.compile(r"^(\d{3})0s$")
_DAY = re.compile(r"^(\d{1,2})(st|nd|rd|th)?$")
_TOKEN = re.compile(r"[\w\-']+", re.UNICODE)


@dataclass
class ParsedQuery:
    terms: list[str] = field(default_factory=list)  # normalised free-text words
    years: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""  # the free text as typed, minus the date words: what gets embedded
    dates: list[str] = field(default_factory=list)  # the date words recognised, for explanations

    @property
    def has_date(self) -> bool:
        return bool(self.years or self.months or self.date_from or self.date_to)

    def matches_date(self, d: date | None) -> bool:
        if not self.has_date:
            return True
        if d is None:
            return False
        if self.years and d.year not in self.years:
            return False
        if self.months and d.month not in self.months:
            return False
        if self.date_from and d < self.date_from:
            return False
        return not (self.date_to and d > self.date_to)


def normalize(text: str) -> str:
    """Case- and accent-insensitive form: "Jönköping" -> "jonkoping"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _valid_day(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _narrow(q: ParsedQuery, start: date, end: date) -> None:
    q.date_from = start if q.date_from is None else max(q.date_from, start)
    q.date_to = end if q.date_to is None else min(q.date_to, end)


def parse_query(q: str) -> ParsedQuery:
    out = ParsedQuery()
    raw = [t.strip("-'") for t in _TOKEN.findall(q)]
    raw = [t for t in raw if t]
    norm = [normalize(t) for t in raw]
    used = [False] * len(raw)

    def year_at(i: int) -> int | None:
        if 0 <= i < len(norm) and not used[i] and (m := _YEAR.match(norm[i])):
            y = int(m.group(1))
            return y if MIN_YEAR <= y <= MAX_YEAR else None
        return None

    def _day_around(i: int, mo: int) -> date | None:
        for day_i in (i + 1, i - 1):
            if not (0 <= day_i < len(norm)) or used[day_i]:
                continue
            if (dm := _DAY.match(norm[day_i])) is None:
                continue
            y_i = max(i, day_i) + 1
            if (y := year_at(y_i)) is not None and (d := _valid_day(y, mo, int(dm.group(1)))):
                used[day_i] = used[y_i] = True
                return d
        return None

    for i, w in enumerate(norm):
        if used[i]:
            continue
        if m := _ISO_DAY.match(w):
            d = _valid_day(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            if d:
                _narrow(out, d, d)
                used[i] = True
        elif m := _ISO_MONTH.match(w):
            y, mo = int(m.group(1)), int(m.group(2))
            if MIN_YEAR <= y <= MAX_YEAR and 1 <= mo <= 12:
                _narrow(out, date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1]))
                used[i] = True
        elif w in _MONTHS:
            mo = _MONTHS[w]
            used[i] = True
            # "june 12 2016", "june 12th, 2016" and "12 june 2016" name one day.
            if (one := _day_around(i, mo)) is not None:
                _narrow(out, one, one)
                continue
            out.months.add(mo)
        elif w in _SEASONS:
            out.months |= _SEASONS[w]
            used[i] = True
        elif (y := year_at(i)) is not None:
            out.years.add(y)
            used[i] = True
        elif m := _DECADE.match(w):
            start = int(m.group(1)) * 10
            if MIN_YEAR <= start <= MAX_YEAR:
                out.years |= set(range(start, start + 10))
                used[i] = True

    out.dates = [raw[i] for i in range(len(raw)) if used[i]]
    free = [raw[i] for i in range(len(raw)) if not used[i]]
    kept: list[str] = []
    for w in free:
        n = normalize(w)
        n = n.removesuffix("'s") if n.endswith("'s") else n.removesuffix("'")
        n = n.replace("'", "")
        if n and n not in STOPWORDS:
            out.terms.append(n)
            kept.append(w)
    out.text = " ".join(kept)
    return out
