"""Card and resident registration numbers in a customer's text are never kept
(`voc_platform.masking.redact_card_and_resident_numbers`, applied as feedback and survey answers
arrive): a card number, written as cards are and passing the Luhn check, keeps its last four
digits; a resident number with a real birth date goes whole; only those spans go, the numbers
beside them stay. Phone, account and order numbers stay. A text without thirteen digits costs
one linear scan (the first pre-check backtracked for 0.4 s on 4,000 characters)."""

from __future__ import annotations

import pytest

from voc_platform.masking import redact_card_and_resident_numbers as redact


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("카드 4111 1111 1111 1111 로 결제했어요", "카드 ***1111 로 결제했어요"),
        ("card 4111-1111-1111-1111.", "card ***1111."),
        ("Amex 3782 822463 10005", "Amex ***0005"),
        ("ＡＢ ４１１１ １１１１ １１１１ １１１１", "ＡＢ ***1111"),  # full-width, as a phone types it
        ("4111-1111-1111-1111 12/27 만료", "***1111 12/27 만료"),  # run into the expiry: the card goes
        ("010-1234-5678 4111 1111 1111 1111", "010-1234-5678 ***1111"),  # the phone beside it stays
        ("4111 1111 1111 1111 2 장", "***1111 2 장"),
        ("5500 0000 0000 0004 - 3 회", "***0004 - 3 회"),
        ("900101-2345678 (1 번)", "******-******* (1 번)"),
        ("카드번호4111111111111111", "카드번호***1111"),  # unbroken
        ("주민번호 900101-2345678 입니다", "주민번호 ******-******* 입니다"),
        ("주민번호9001012345678", "주민번호******-*******"),
    ],
)
def test_card_and_resident_numbers_go(text: str, kept: str) -> None:
    assert redact(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "010-1234-5678로 연락 주세요",  # a phone number: staff call back
        "+82 10 1234 5678",
        "환불 계좌 110-123-456789 신한",  # an account number: for the refund
        "주문번호 1234567890123 확인 부탁",  # 13 digits, not a card (Luhn) nor a birth date
        "4111 1111 1111 1112",  # one digit off: not a card number
        "+82 900101 2345678",  # international: a phone number, not a resident number
        "991301-2345678",  # month 13: not a birth date
        "12시 30분에 2명, 15,000원",
        "010-1234-5678 / 010-9876-5432",  # two phones: no four-four-four-four card
        "우리은행 1002-123-456789",  # account numbers are not resident numbers
        "농협 301-1234-5678-91",
        "12 3456 7890 1234 5 people",
        "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6",
        "",
    ],
)
def test_other_numbers_stay(text: str) -> None:
    assert redact(text) == text


def test_a_long_text_is_one_linear_scan() -> None:
    """Not a timed test: a long text without a card is returned as it is (the pre-check is a
    bounded pattern, so it cannot backtrack through every choice of the text's digits)."""
    for text in ("가" * 4000 + " 010-1234-5678", "1" * 12 + "가" * 4000, "12 " * 1300):
        assert redact(text) == text
