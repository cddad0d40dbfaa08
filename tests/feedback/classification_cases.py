"""Cases both classifiers answer alike (the learned model in test_classification.py, the lexicon
baseline in test_classification_lexicon.py): one list each, so the two suites cannot drift."""

# Texts of every awkward shape: empty, emoticon-only, emoji, long floods, punctuation only.
SAMPLES = [
    "",
    "ㅋㅋ",
    "직원이 너무 불친절해요 최악",
    "Best pho in town!!! 😋😋",
    "배달 늦음 ㅡㅡ 환불해주세요",
    "x" * 5000,
    "가" * 3000 + " not good " * 200,
    "?!?!",
]

# One clear example per category, in Korean and English.
CATEGORY_EXAMPLES = [
    ("주문하고 40분 기다렸어요", "wait_time"),
    ("음식이 다 식어서 나왔어요", "food_quality"),
    ("테이블이 끈적끈적하고 더러워요", "cleanliness"),
    ("가성비 최고", "price_value"),
    ("새로 산 이어폰이 고장났어요", "product_defect"),
    ("배송이 일주일째 안 와요", "delivery"),
    ("결제가 두 번 됐어요", "billing_payment"),
    ("앱이 계속 튕겨요", "app_digital"),
    ("주차 공간이 너무 부족해요", "facility"),
    ("직원분이 너무 친절하세요 감사합니다", "praise"),
    ("직원이 반말을 했어요", "staff_attitude"),
    ("I was charged twice for the same order.", "billing_payment"),
    ("The app keeps crashing.", "app_digital"),
    ("Package was delivered to the wrong address.", "delivery"),
    ("Thanks Jenny, you were wonderful!", "praise"),
]
