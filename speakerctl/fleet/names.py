"""Finding a zone or a cluster from what people type: its id, or its name without diacritics, any case.

`fold("Kế Sách") == fold("ke sach") == "ke sach"` (đ → d too); a zone also answers to its kind and name
("huyen ke sach", "thi tran ke sach", "district ke sach"), which tells apart two zones of one name.
Several matches are a UsageError listing them; none is NotFound with the closest names ("did you mean").
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speakerctl.errors import NotFound, UsageError
from speakerctl.i18n import _

SUGGESTIONS = 3
"""At most this many names after "did you mean"."""
_SEPARATORS = re.compile(r"[\s\-_.,/]+")


def fold(text: str) -> str:
    """`text` for matching: no diacritics (đ → d), case-folded, separators as single spaces."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", bare.casefold()).strip()


@dataclass(frozen=True, slots=True)
class Named:
    """Something a command can be pointed at: its id, its name, and what it is ("xã", "cluster"...)."""

    id: str
    name: str
    what: str
    aliases: tuple[str, ...] = ()
    """Other words it answers to, e.g. its kind in English and in Vietnamese before its name."""

    def folded(self) -> frozenset[str]:
        """The folded forms that match it exactly."""
        words = (self.id, self.name, f"{self.what} {self.name}", *self.aliases)
        return frozenset(fold(w) for w in words)

    def describe(self) -> str:
        """For a list of choices: "Kế Sách (huyện, st-ke-sach)"."""
        return f"{self.name} ({self.what}, {self.id})"


def find(query: str, candidates: Iterable[Named]) -> list[Named]:
    """The candidates `query` names: the one with that exact id, else every folded match."""
    every = list(candidates)
    exact = [c for c in every if c.id == query]
    if exact:
        return exact
    wanted = fold(query)
    return [c for c in every if wanted in c.folded()]


def resolve(query: str, candidates: Sequence[Named], noun: str) -> Named:
    """The one candidate `query` names; UsageError if several, NotFound (with suggestions) if none."""
    found = find(query, candidates)
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(
            _("{query!r} could be {choices}").format(
                query=query, choices="; ".join(c.describe() for c in found)
            ),
            hint=_("give its id, or its kind before its name (e.g. {example!r})").format(
                example=f"{found[0].what} {query}"
            ),
        )
    raise NotFound(
        _("no {noun} named {query!r}").format(noun=noun, query=query), hint=_hint(query, candidates)
    )


def suggestions(query: str, candidates: Sequence[Named], limit: int = SUGGESTIONS) -> list[Named]:
    """The candidates whose folded name or id is closest to `query` (difflib), best first."""
    by_key: dict[str, list[Named]] = {}
    for c in candidates:
        for key in dict.fromkeys((fold(c.name), fold(c.id))):
            by_key.setdefault(key, []).append(c)
    close = difflib.get_close_matches(fold(query), list(by_key), n=limit * 2, cutoff=0.6)
    chosen = dict.fromkeys(c for k in close for c in by_key[k])
    return list(chosen)[:limit]


def _hint(query: str, candidates: Sequence[Named]) -> str:
    close = suggestions(query, candidates)
    if not close:
        return _("see `speakerctl zones list` and `speakerctl devices list`")
    return _("did you mean: {names}?").format(names="; ".join(c.describe() for c in close))
