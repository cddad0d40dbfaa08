"""Card and resident registration numbers in a customer's text are never kept
(`voc_platform.masking.redact_card_and_resident_numbers`, applied as feedback and survey answers
arrive): a card number that passes the Luhn check, however separated, keeps its last four digits;
a resident number with a real birth date goes whole. Phone, account and order numbers stay."""

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
        ("4111-1111-1111-1111 12/27 만료", "***1227 만료"),  # run into the expiry: the card still goes
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
        "",
    ],
)
def test_other_numbers_stay(text: str) -> None:
    assert redact(text) == text
