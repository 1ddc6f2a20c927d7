"""Vietnamese text made speakable: numbers, dates, times and abbreviations in words, then sentences.

espeak-ng's Vietnamese rules read "15" as "mười năm" (not "mười lăm"), "05:00" digit by digit
and "1.500.000" with a stray "không trăm", so every number is spelt out here before synthesis:
"05:00" → "năm giờ", "29/11/2026" → "ngày hai mươi chín tháng mười một năm hai nghìn không trăm
hai mươi sáu", 21 → "hai mươi mốt", 105 → "một trăm linh năm" ("lẻ" in the southern voice).
Digits group with dots and decimals follow a comma, as written in Vietnam: "1.500.000", "2,5".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
SCALES = ("", "nghìn", "triệu", "tỷ")
MAX_SPOKEN = 10**12 - 1
"""Larger integers, and any with a leading zero (phone numbers), are read digit by digit."""
MAX_SENTENCE_CHARS = 300
"""A longer sentence is cut again at commas, so no synthesis call grows without bound."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The words that differ between the northern and southern readings of numbers."""

    zero_tens: str = "linh"
    thousand: str = "nghìn"


NORTH = Dialect()
SOUTH = Dialect(zero_tens="lẻ", thousand="ngàn")

ABBREVIATIONS = {
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "TP.": "thành phố",
    "TP": "thành phố",
    "HTX": "hợp tác xã",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "CSGT": "cảnh sát giao thông",
    "PCCC": "phòng cháy chữa cháy",
    "VNĐ": "đồng",
    "VND": "đồng",
}
UNITS = {
    "%": "phần trăm",
    "km": "ki lô mét",
    "kg": "ki lô gam",
    "ha": "héc ta",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "mm": "mi li mét",
    "°C": "độ xê",
    "đ": "đồng",
}

_ABBREVIATION = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True)) + r")(?!\w)"
)
_DATE = re.compile(r"(?<![\d/.,-])(?:(\d{1,2})/(\d{1,2})(?:/(\d{4}))?|(\d{1,2})-(\d{1,2})-(\d{4}))(?![\d/-])")
_MONTH_YEAR = re.compile(r"(?<![\d/.,-])(\d{1,2})/(\d{4})(?![\d/])")
_TIME = re.compile(r"(?<![\d:.,])([01]?\d|2[0-4])(?::([0-5]\d)(?::([0-5]\d))?|[hg]([0-5]\d)?)(?![\d:])")
_ORDINAL = re.compile(r"\b(thứ|Thứ)\s+(\d+)\b")
_NUMBER = re.compile(r"(?<![\d,.])(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+)|\.(?!\d{3}(?!\d))(\d+))?(?!\d)|\d+")
_UNIT = re.compile(
    r"(?<=\d)\s*(" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True)) + r")(?!\w)"
)
_SENTENCE_END = re.compile(r"(?<=[.!?…;])\s+|\n\s*")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")


def dialect_for(voice: str) -> Dialect:
    """The number words of a voice: southern for vi-vn-x-south, northern otherwise."""
    return SOUTH if voice.lower().endswith("south") else NORTH


def integer_words(n: int, dialect: Dialect = NORTH) -> str:
    """An integer in Vietnamese words, e.g. 1_000_005 → "một triệu không trăm linh năm"."""
    if n < 0:
        return f"âm {integer_words(-n, dialect)}"
    if n > MAX_SPOKEN:
        return digit_words(str(n))
    if n == 0:
        return DIGITS[0]
    groups = _groups(n)
    words: list[str] = []
    for index, group in enumerate(groups):
        if group == 0:
            continue
        leading = not words
        words.append(_hundreds(group, full=not leading, dialect=dialect))
        scale = _scale(len(groups) - 1 - index, dialect)
        if scale:
            words.append(scale)
    return " ".join(words)


def _groups(n: int) -> list[int]:
    """n in groups of three digits, most significant first."""
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    return groups[::-1]


def _scale(position: int, dialect: Dialect) -> str:
    """The word of a group position: nghìn, triệu, tỷ, then nghìn tỷ."""
    if position == 0:
        return ""
    if position < len(SCALES):
        return dialect.thousand if position == 1 else SCALES[position]
    return f"{dialect.thousand} tỷ"


def _hundreds(n: int, *, full: bool, dialect: Dialect) -> str:
    """0 < n < 1000 in words; `full` says "không trăm" for a group after a larger one."""
    hundreds, rest = divmod(n, 100)
    if hundreds == 0 and not full:
        return _tens(rest)
    head = f"{DIGITS[hundreds]} trăm"
    if rest == 0:
        return head
    if rest < 10:
        return f"{head} {dialect.zero_tens} {DIGITS[rest]}"
    return f"{head} {_tens(rest)}"


def _tens(n: int) -> str:
    """0 < n < 100 in words: mười lăm, hai mươi mốt, ba mươi tư is left as ba mươi bốn."""
    tens, unit = divmod(n, 10)
    if tens == 0:
        return DIGITS[unit]
    head = "mười" if tens == 1 else f"{DIGITS[tens]} mươi"
    if unit == 0:
        return head
    if unit == 5:
        return f"{head} lăm"
    if unit == 1 and tens > 1:
        return f"{head} mốt"
    return f"{head} {DIGITS[unit]}"


def digit_words(digits: str) -> str:
    """Digits one by one, as phone numbers and codes are read."""
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def decimal_words(whole: str, fraction: str | None, dialect: Dialect = NORTH) -> str:
    """A number as written ("1.500.000", "2,5", "0912345678") in words."""
    plain = whole.replace(".", "")
    if len(plain) > 1 and plain.startswith("0"):
        spoken = digit_words(plain)
    else:
        spoken = integer_words(int(plain), dialect)
    if fraction is None:
        return spoken
    tail = digit_words(fraction) if fraction.startswith("0") else integer_words(int(fraction), dialect)
    return f"{spoken} phẩy {tail}"


def time_words(hour: int, minute: int = 0, second: int = 0, dialect: Dialect = NORTH) -> str:
    """A clock time: 05:00 → "năm giờ", 7:30 → "bảy giờ ba mươi phút"."""
    words = [f"{integer_words(hour, dialect)} giờ"]
    if minute:
        words.append(f"{integer_words(minute, dialect)} phút")
    if second:
        words.append(f"{integer_words(second, dialect)} giây")
    return " ".join(words)


def date_words(day: int | None, month: int, year: int | None, dialect: Dialect = NORTH) -> str:
    """A date: ngày hai mươi chín tháng mười một năm hai nghìn không trăm hai mươi sáu."""
    words = []
    if day is not None:
        words.append(f"ngày {integer_words(day, dialect)}")
    words.append(f"tháng {_month(month)}")
    if year is not None:
        words.append(f"năm {integer_words(year, dialect)}")
    return " ".join(words)


def _month(month: int) -> str:
    """Month names: tháng tư, not tháng bốn."""
    return "tư" if month == 4 else integer_words(month)


def ordinal_words(n: int, dialect: Dialect = NORTH) -> str:
    """After "thứ": nhất, hai, ba, tư, năm…"""
    return {1: "nhất", 4: "tư"}.get(n, integer_words(n, dialect))


def normalize(text: str, voice: str = "vi") -> str:
    """Text with every number, date, time, unit and known abbreviation spelt out."""
    dialect = dialect_for(voice)
    text = unicodedata.normalize("NFC", text)
    text = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1)], text)
    for pattern, spell in _spellers(dialect):
        text = pattern.sub(spell, text)
    return re.sub(r"[ \t]+", " ", re.sub(r"[ \t]+(?=[,.;:!?…)])", "", text)).strip()


def _spellers(dialect: Dialect) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    """The rewrites, most specific first: dates and times before plain numbers."""
    return [
        (_DATE, lambda m: _date(m, dialect)),
        (_MONTH_YEAR, lambda m: _month_year(m, dialect)),
        (_TIME, lambda m: _time(m, dialect)),
        (_ORDINAL, lambda m: f"{m.group(1)} {ordinal_words(int(m.group(2)), dialect)}"),
        (_UNIT, lambda m: f" {UNITS[m.group(1)]}"),
        (_NUMBER, lambda m: _number(m, dialect)),
    ]


def _date(m: re.Match[str], dialect: Dialect) -> str:
    """d/m[/yyyy] or d-m-yyyy if it is a real day and month, else the text unchanged."""
    day, month, year_text = m.group(1, 2, 3) if m.group(1) else m.group(4, 5, 6)
    day, month = int(day), int(month)
    year = int(year_text) if year_text else None
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    words = date_words(day, month, year, dialect)
    before = m.string[: m.start()].rstrip().lower()
    return words.removeprefix("ngày ") if before.endswith(("ngày", "hôm")) else words


def _month_year(m: re.Match[str], dialect: Dialect) -> str:
    """mm/yyyy if the month is real."""
    month = int(m.group(1))
    if not 1 <= month <= 12:
        return m.group(0)
    words = date_words(None, month, int(m.group(2)), dialect)
    before = m.string[: m.start()].rstrip().lower()
    return words.removeprefix("tháng ") if before.endswith("tháng") else words


def _time(m: re.Match[str], dialect: Dialect) -> str:
    """hh:mm[:ss], 5h, 5h30, 5g30 as a clock time."""
    hour = int(m.group(1))
    minute = int(m.group(2) or m.group(4) or 0)
    return time_words(hour, minute, int(m.group(3) or 0), dialect)


def _number(m: re.Match[str], dialect: Dialect) -> str:
    """A written number in words, spaced from whatever it was glued to; stray digits one by one."""
    if m.group(1) is None:
        return f" {digit_words(m.group(0))} "
    return f" {decimal_words(m.group(1), m.group(2) or m.group(3), dialect)} "


def sentences(text: str) -> list[str]:
    """The sentences of a text, split after . ! ? … ; and at line breaks; long ones at commas."""
    found: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        found.extend(_short_pieces(sentence.strip()))
    return [s for s in found if any(c.isalnum() for c in s)]


def _short_pieces(sentence: str) -> list[str]:
    """A sentence, or its clauses regrouped under MAX_SENTENCE_CHARS if it is longer."""
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if pieces and len(pieces[-1]) + len(clause) < MAX_SENTENCE_CHARS:
            pieces[-1] = f"{pieces[-1]} {clause}"
        else:
            pieces.extend(_hard_cut(clause))
    return pieces


def _hard_cut(clause: str) -> list[str]:
    """A clause with no commas cut at spaces into pieces under MAX_SENTENCE_CHARS."""
    pieces: list[str] = []
    for word in clause.split():
        if pieces and len(pieces[-1]) + len(word) < MAX_SENTENCE_CHARS:
            pieces[-1] = f"{pieces[-1]} {word}"
        else:
            pieces.append(word)
    return pieces
