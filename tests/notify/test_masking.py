"""What reaches the lock screen: every way people write a phone number, an e-mail, a resident
registration number or a card number in Korean and English feedback is masked in the push body
(`masking.compose`), while ordinary numbers stay as written."""

from __future__ import annotations

import pytest

from voc_notify.facts import UNKNOWN_CUSTOMER
from voc_notify.masking import compose, mask_text
from voc_platform.masking import INSERTED_VALUE_LIMIT, mask_inserted_names

# (what the customer wrote, what must not reach the lock screen, what it shows instead)
PERSONAL = [
    ("010.1234.5678", "1234", "***5678"),
    ("010-1234-5678", "1234", "***5678"),
    ("010 1234 5678", "1234", "***5678"),
    ("01012345678", "1234", "***5678"),
    ("010/1234/5678", "1234", "***5678"),
    ("010 - 1234 - 5678", "1234", "***5678"),
    ("010 1234\u00a05678", "1234", "***5678"),  # a no-break space
    ("０１０－１２３４－５６７８", "１２３４", "***５６７８"),  # full-width, as Korean IMEs type them
    ("+82 10 1234 5678", "+82", "***5678"),
    ("+82-10-1234-5678", "+82", "***5678"),
    ("+82 (0)10 1234 5678", "+82", "***5678"),
    ("+821012345678", "+82", "***5678"),
    ("(02) 123-4567", "123", "***4567"),
    ("kim.minji@gmail.com", "kim.minji", "***@***"),
    ("minji@mail.my-shop.co.kr", "my-shop", "***@***"),
    ("min-ji+voc@sub-a.example-b.com", "example-b", "***@***"),
    ("900101-1234567", "1234567", "******-*******"),  # resident registration number
    ("9001011234567", "1234567", "******-*******"),
    ("900101 - 2234567", "2234567", "******-*******"),
    ("4111 1111 1111 1111", "4111", "***1111"),  # card, 16 digits with spaces
    ("4111-1111-1111-1111", "4111", "***1111"),
    ("5500 0000 0000 0004", "5500", "***0004"),
    ("3782 822463 10005", "822463", "***0005"),  # 15 digits (Amex)
    ("6011000990139424", "60110009", "***9424"),
    ("4222 2222 2222 2222 222", "4222", "***2222"),  # 19 digits
    # What Korean keyboards offer for a dash, and what people type instead (security review).
    ("010ㅡ1234ㅡ5678", "1234", "***5678"),  # the vowel ㅡ
    ("010~1234~5678", "1234", "***5678"),
    ("010～1234～5678", "1234", "***5678"),
    ("010·1234·5678", "1234", "***5678"),
    ("010*1234*5678", "1234", "***5678"),
    ("010_1234_5678", "1234", "***5678"),
    ("abc＠naver.com", "abc", "***@***"),  # a full-width @
    ("john @ gmail.com", "john", "***@***"),
    ("john(at)gmail(dot)com", "john", "***@***"),
    ("john [at] gmail [dot] com", "john", "***@***"),
    # The API review: what a phone's keyboard also offers.
    ("010:1234:5678", "1234", "***5678"),
    ("010,1234,5678", "1234", "***5678"),
    ("010, 1234, 5678", "1234", "***5678"),
    ("⁰¹⁰¹²³⁴⁵⁶⁷⁸", "¹²³⁴", "***⁵⁶⁷⁸"),  # superscript digits
    ("kim.minsu @ example . com", "minsu", "***@***"),
]
SENTENCES = {
    "ko": "연락처는 {} 입니다. 환불 부탁드려요.",
    "en": "Please call me back at {} about the refund.",
}


@pytest.mark.parametrize("language", ["ko", "en"])
@pytest.mark.parametrize(("written", "secret", "shown"), PERSONAL)
def test_personal_data_is_masked_in_the_push_body(
    language: str, written: str, secret: str, shown: str
) -> None:
    text = SENTENCES[language].format(written)
    title, body = compose(
        store_name="강남역점",
        category="service_speed",
        priority="urgent",
        customer=UNKNOWN_CUSTOMER,
        text=text,
        ratings={"csat": 1},
        language=language,
    )
    assert secret not in body and written not in body, body
    assert shown in body, body
    assert secret not in title
    # The sentence around it is kept.
    assert SENTENCES[language].split("{}")[0].strip() in body


@pytest.mark.parametrize(
    "text",
    [
        "30분 기다렸어요. 2번 말씀드렸는데 12시 30분에야 나왔어요.",
        "Waited 30 minutes; asked 2 times, food came at 12:30.",
        "국밥 9,000원인데 12,000원 결제됨",
        "Charged 12,000 won for a 9,000 won meal; table 12, order A-1234.",
        "2024년 5월 3일 방문",
        "3~4일 걸린다고 했는데 10:30~11:00 사이에 온대요. 2명·3명 자리",
        "5*3 portions, snake_case menu, I'll be there (at) noon. Meet @ 5. Then go.",
        "10:30, 11:30, 12:30 세 번 갔어요. 1,200,000원짜리 코스? email me @ home. Thanks",
    ],
)
def test_ordinary_numbers_stay_as_written(text: str) -> None:
    assert mask_text(text) == text


def test_the_excerpt_is_masked_before_it_is_cut() -> None:
    text = "x" * 110 + " 010-1234-5678"
    masked = mask_text(text)
    assert "1234" not in masked and len(masked) <= 120


@pytest.mark.parametrize(("language", "says"), [("ko", "[긴급] 재오픈 · "), ("en", "[URGENT] Reopened · ")])
def test_a_reopened_case_says_so_first_in_the_push_title(language: str, says: str) -> None:
    """An unhappy follow-up answer reopens a case: read as a new complaint before (apps review)."""
    title, _ = compose(
        store_name="강남역점",
        category="food_safety",
        priority="urgent",
        customer=UNKNOWN_CUSTOMER,
        text="환불은 받았지만 아직도 찝찝합니다.",
        ratings={"csat": 1},
        language=language,
        reopened=True,
    )
    assert title.startswith(says), title


def test_a_long_name_cut_by_the_playbook_render_is_masked_whole() -> None:
    """actions' render cuts an inserted value at 60 characters: the cut last word is a word the
    name does not have, and is masked too (the events' playbook_title, erasure's scrub)."""
    name = "Adolph Blaine Charles David Earl Frederick Wolfeschlegelsteinhausenbergerdorff"
    title = f"Call back {name[:INSERTED_VALUE_LIMIT]} today"
    masked = mask_inserted_names(title, name)
    assert masked.startswith("Call back A***** B***** ") and masked.endswith(" today")
    assert "Wolfe" not in masked and "olfe" not in masked
    assert mask_inserted_names(title, name, replacement="the customer") == "Call back the customer today"
