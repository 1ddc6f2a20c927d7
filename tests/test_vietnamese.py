"""Vietnamese text normalisation: numbers, dates, times and sentences, as a reader would say them."""

from __future__ import annotations

import pytest

from speakerctl.audio.vietnamese import (
    MAX_SENTENCE_CHARS,
    SOUTH,
    integer_words,
    normalize,
    sentences,
)

INTEGERS = {
    0: "không",
    1: "một",
    5: "năm",
    10: "mười",
    11: "mười một",
    15: "mười lăm",
    20: "hai mươi",
    21: "hai mươi mốt",
    24: "hai mươi bốn",
    25: "hai mươi lăm",
    55: "năm mươi lăm",
    100: "một trăm",
    101: "một trăm linh một",
    105: "một trăm linh năm",
    110: "một trăm mười",
    115: "một trăm mười lăm",
    121: "một trăm hai mươi mốt",
    1000: "một nghìn",
    1005: "một nghìn không trăm linh năm",
    1015: "một nghìn không trăm mười lăm",
    1100: "một nghìn một trăm",
    2026: "hai nghìn không trăm hai mươi sáu",
    10_000: "mười nghìn",
    105_000: "một trăm linh năm nghìn",
    1_000_000: "một triệu",
    1_500_000: "một triệu năm trăm nghìn",
    1_000_500: "một triệu năm trăm",
    1_000_005: "một triệu không trăm linh năm",
    1_000_000_000: "một tỷ",
    2_001_000_000: "hai tỷ không trăm linh một triệu",
    999_999_999_999: "chín trăm chín mươi chín tỷ chín trăm chín mươi chín triệu "
    "chín trăm chín mươi chín nghìn chín trăm chín mươi chín",
}


@pytest.mark.parametrize(("n", "words"), INTEGERS.items())
def test_integers_follow_the_vietnamese_rules(n: int, words: str) -> None:
    assert integer_words(n) == words


def test_southern_reading_says_le_and_ngan() -> None:
    assert integer_words(105, SOUTH) == "một trăm lẻ năm"
    assert integer_words(2026, SOUTH) == "hai ngàn không trăm hai mươi sáu"
    assert normalize("105 hộ", "vi-vn-x-south") == "một trăm lẻ năm hộ"


def test_the_examples_of_the_issue() -> None:
    assert normalize("05:00") == "năm giờ"
    assert normalize("29/11/2026") == (
        "ngày hai mươi chín tháng mười một năm hai nghìn không trăm hai mươi sáu"
    )


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Họp lúc 7:30 sáng", "Họp lúc bảy giờ ba mươi phút sáng"),
        ("từ 5h đến 19g15", "từ năm giờ đến mười chín giờ mười lăm phút"),
        ("ngày 29/11/2026", "ngày hai mươi chín tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("hôm 1/4", "hôm một tháng tư"),
        ("tháng 11/2026", "tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("29-11-2026", "ngày hai mươi chín tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("Giá 1.500.000 đồng", "Giá một triệu năm trăm nghìn đồng"),
        ("50.000đ", "năm mươi nghìn đồng"),
        ("2,5 ha", "hai phẩy năm héc ta"),
        ("3,05 kg", "ba phẩy không năm ki lô gam"),
        ("15%", "mười lăm phần trăm"),
        ("Thứ 4 và thứ 2", "Thứ tư và thứ hai"),
        ("Gọi 0912345678.", "Gọi không chín một hai ba bốn năm sáu bảy tám."),
        ("UBND xã, HTX", "ủy ban nhân dân xã, hợp tác xã"),
        ("từ 5-7 người", "từ năm - bảy người"),
        ("Mã 123abc", "Mã một trăm hai mươi ba abc"),
    ],
)
def test_numbers_dates_times_and_units_in_words(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


def test_impossible_dates_are_not_read_as_dates() -> None:
    assert "tháng" not in normalize("12/13/2020")


def test_sentences_split_on_vietnamese_punctuation_and_lines() -> None:
    text = "Kính thưa bà con. Trời mưa to! Có ai ở nhà không? Hết…\nXin cảm ơn; hẹn gặp lại"
    assert sentences(text) == [
        "Kính thưa bà con.",
        "Trời mưa to!",
        "Có ai ở nhà không?",
        "Hết…",
        "Xin cảm ơn;",
        "hẹn gặp lại",
    ]


def test_a_long_sentence_is_cut_at_commas_then_spaces() -> None:
    clause = "bà con chú ý giữ gìn vệ sinh chuồng trại, "
    pieces = sentences(clause * 40 + "xin cảm ơn.")
    assert len(pieces) > 1 and all(len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert " ".join(pieces).split() == (clause * 40 + "xin cảm ơn.").split()
    words = sentences("chữ " * 400)
    assert len(words) > 1 and all(len(p) <= MAX_SENTENCE_CHARS for p in words)


def test_text_without_words_has_no_sentences() -> None:
    assert sentences("… ! ?\n\n") == []
