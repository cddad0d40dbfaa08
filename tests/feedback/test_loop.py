"""The closed loop on the feedback side: notify's events (published here on JetStream as notify
would) move the case, a resolution opens the one-time follow-up page, answers are recorded, an
unhappy one reopens the case as a new linked item, and the loop KPIs come out of analytics."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from functools import partial
from typing import Any

import grpc
import httpx
import pytest
from grpc import aio

from tests.feedback.conftest import INTERNAL_TOKEN, FeedbackService, problem, run_async, wait_until
from voc.events.v1 import events_pb2
from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from voc_feedback import analytics, cases, pages

STORE = "loop-store"


@pytest.fixture(scope="module")
def key(feedback_service: FeedbackService) -> dict[str, Any]:
    httpx.put(
        f"{feedback_service.url}/v1/admin/stores",
        json=[{"id": STORE, "name": "루프점", "area_id": "area-loop"}],
        headers=feedback_service.admin,
    )
    return feedback_service.new_key(STORE, name="loop app")


def submit(service: FeedbackService, key: dict[str, Any], text: str, **extra: Any) -> str:
    r = service.post(key, {"store_id": STORE, "channel": "kiosk", "text": text, **extra})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def alert_lifecycle(
    service: FeedbackService,
    feedback_id: str,
    *,
    ack_after: float,
    resolve_after: float,
    escalate: bool = False,
    store: str = STORE,
    priority: str = "",
    outcome: str = "compensated",
) -> None:
    """Notify's events for one alert, timed relative to the item's receipt."""
    base = datetime.fromisoformat(service.get(feedback_id)["received_at"]).timestamp()
    alert_id = f"alert-{uuid.uuid4().hex[:8]}"
    ms = lambda seconds: int((base + seconds) * 1000)  # noqa: E731
    service.publish(
        "voc.alert.created",
        events_pb2.AlertCreated(
            alert_id=alert_id,
            feedback_id=feedback_id,
            store_id=store,
            created_at_ms=ms(0.2),
            priority=priority,
        ),
        f"{alert_id}-created",
    )
    if escalate:
        service.publish(
            "voc.alert.escalated",
            events_pb2.AlertEscalated(
                alert_id=alert_id, feedback_id=feedback_id, level=1, escalated_at_ms=ms(60)
            ),
            f"{alert_id}-escalated",
        )
    service.publish(
        "voc.alert.acknowledged",
        events_pb2.AlertAcknowledged(
            alert_id=alert_id, feedback_id=feedback_id, staff_id="staff-1", acknowledged_at_ms=ms(ack_after)
        ),
        f"{alert_id}-ack",
    )
    service.publish(
        "voc.alert.resolved",
        events_pb2.AlertResolved(
            alert_id=alert_id,
            feedback_id=feedback_id,
            staff_id="staff-1",
            outcome=outcome,
            note="음료 제공",
            resolved_at_ms=ms(resolve_after),
            priority=priority,  # as notify sends it: the case may read this before the creation
        ),
        f"{alert_id}-resolved",
    )
    wait_until(lambda: service.get(feedback_id)["status"] == "resolved")


def follow_up_token(service: FeedbackService, feedback_id: str) -> str:
    url = wait_until(lambda: (service.get(feedback_id).get("follow_up") or {}).get("url"))
    assert url.startswith(f"{service.url}/f/")
    return str(url.rsplit("/", 1)[1])


def test_case_lifecycle_and_happy_follow_up(feedback_service: FeedbackService, key: dict[str, Any]) -> None:
    feedback_id = submit(feedback_service, key, "직원분이 주문을 잘못 받았어요", ratings={"csat": 2})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    item = feedback_service.get(feedback_id)
    kinds = [t["kind"] for t in item["timeline"]]
    assert kinds[:4] == ["received", "alerted", "acknowledged", "resolved"] and "follow_up_requested" in kinds
    resolved = next(t for t in item["timeline"] if t["kind"] == "resolved")
    assert resolved["actor"] == "staff:staff-1" and resolved["detail"]["outcome"] == "compensated"
    # The follow-up request is published for a messaging service to send.
    follow_up_id = feedback_service.scalar("SELECT id FROM follow_ups WHERE feedback_id = :f", f=feedback_id)
    assert wait_until(
        lambda: feedback_service.scalar(
            "SELECT count(*) FROM outbox WHERE subject = 'voc.feedback.follow_up_requested' "
            "AND published_at IS NOT NULL AND event_id = :e",
            e=f"follow-up-requested:{follow_up_id}",
        )
    )

    token = follow_up_token(feedback_service, feedback_id)
    page = httpx.get(f"{feedback_service.url}/f/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'lang="ko"' in page.text and "루프점" in page.text and 'name="viewport"' in page.text
    english = httpx.get(f"{feedback_service.url}/f/{token}", params={"lang": "en"})
    assert 'lang="en"' in english.text and "How did we do?" in english.text

    # Sent without a score: the page again, about this case at this store, with what was typed
    # (it came back as a case of "기타" at "매장", the comment gone).
    unscored = httpx.post(
        f"{feedback_service.url}/f/{token}",
        data={"revisit_intent": "yes", "comment": "직원분이 <친절>했어요", "lang": "ko"},
    )
    assert unscored.status_code == 422 and 'role="alert"' in unscored.text
    assert "루프점" in unscored.text and "직원분이 &lt;친절&gt;했어요</textarea>" in unscored.text
    assert 'value="yes" checked' in unscored.text and 'aria-labelledby="comment-label"' in unscored.text
    answer = httpx.post(
        f"{feedback_service.url}/f/{token}",
        data={"csat": "5", "revisit_intent": "yes", "comment": "빠르게 해결해 주셔서 감사해요", "lang": "ko"},
    )
    assert answer.status_code == 200 and "감사합니다" in answer.text
    item = feedback_service.get(feedback_id)
    assert item["status"] == "followed_up" and item["follow_up"]["satisfied"] is True
    assert item["follow_up"]["url"] is None  # one-time
    # A happy answer's words and visit intent are on the case too (they were kept only when unhappy).
    answered = next(t for t in item["timeline"] if t["kind"] == "followed_up")["detail"]
    assert (answered["comment"], answered["revisit_intent"], answered["csat"]) == (
        "빠르게 해결해 주셔서 감사해요",
        True,
        5,
    )
    # Used once: the page and a second answer are gone.
    assert httpx.get(f"{feedback_service.url}/f/{token}").status_code == 410
    problem(httpx.post(f"{feedback_service.url}/f/{token}", json={"csat": 1}), 410)


def test_an_english_customer_reads_the_page_in_english_and_never_our_category(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The survey speaks of what the customer told the store, not of how we filed it ("about
    'Staff attitude'" for a wait); once answered, the closed page speaks the customer's language
    (it fell back to Korean)."""
    feedback_id = submit(
        feedback_service, key, "We waited forty minutes and nobody came.", ratings={"csat": 1}
    )
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    token = follow_up_token(feedback_service, feedback_id)
    page = httpx.get(f"{feedback_service.url}/f/{token}")
    assert 'lang="en"' in page.text and "We acted on what you told 루프점. Please tell us" in page.text
    label = feedback_service.get(feedback_id)["classification"]["category"]
    assert "about" not in page.text and label not in page.text.lower()
    assert httpx.post(f"{feedback_service.url}/f/{token}", json={"csat": 4}).status_code == 200
    closed = httpx.get(f"{feedback_service.url}/f/{token}")
    assert closed.status_code == 410 and 'lang="en"' in closed.text
    assert "<h1>Already answered</h1>" in closed.text and "You already answered. Thank you!" in closed.text


def test_the_thanks_promise_nothing_staff_cannot_keep(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """A 3 is neither satisfied nor reopens the case: its thanks promise nothing; a 1 reopens it
    (the store is paged again) and says so, not that someone will call (a manager sees the
    contact masked); a 5 from someone who will not come back is not told "see you next time"."""
    said = {}
    for csat, revisit in (("3", ""), ("1", ""), ("5", "no"), ("5", "yes")):
        feedback_id = submit(
            feedback_service, key, f"Cold food again, case {csat}{revisit}.", ratings={"csat": 1}
        )
        alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
        token = follow_up_token(feedback_service, feedback_id)
        form = {"csat": csat, "lang": "en", "revisit_intent": revisit}
        answer = httpx.post(f"{feedback_service.url}/f/{token}", data=form)
        assert answer.status_code == 200, answer.text
        said[csat + revisit] = answer.text
    assert "Thank you for telling us" in said["3"] and "told the store" not in said["3"]
    assert "We have told the store again so that they put it right." in said["1"]
    assert "get back" not in said["1"] and "call" not in said["1"]
    assert "We are glad it was put right.</p>" in said["5no"] and "See you next time" in said["5yes"]


def test_the_survey_form_keeps_what_was_given_and_says_what_was_wrong(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """A browser sends a textarea's line breaks as CRLF, which its maxlength counted as one: a
    comment at the limit over several lines is taken. A comment over it is refused in its own
    words, the rating kept; "maybe" for revisit is refused, not dropped; an expired link gives
    back what was written; a link that is not ours speaks the browser's language."""
    feedback_id = submit(feedback_service, key, "국이 식었어요", ratings={"csat": 1})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    token = follow_up_token(feedback_service, feedback_id)
    url = f"{feedback_service.url}/f/{token}"
    too_long = httpx.post(url, data={"csat": "2", "comment": "가" * 4001, "lang": "ko"})
    assert too_long.status_code == 422
    assert "남기실 말씀은 4,000자까지" in too_long.text and "1~5 중에서" not in too_long.text
    assert 'value="2" required checked' in too_long.text  # the rating is kept
    assert (
        'id="form-error" role="alert"' in too_long.text and 'aria-describedby="form-error"' in too_long.text
    )
    maybe = httpx.post(url, data={"csat": "4", "revisit_intent": "maybe", "lang": "en"})
    assert maybe.status_code == 422 and "Please answer Yes or No" in maybe.text
    # A revisit answer is yes or no (true or false), not "on" or 1.
    assert httpx.post(url, data={"csat": "4", "revisit_intent": "on"}).status_code == 422
    assert httpx.post(url, json={"csat": 4, "revisit_intent": 1}).status_code == 422
    lines = "\r\n".join(["가" * 999] * 4)  # 3,999 characters as the browser counts, 4,002 as sent
    taken = httpx.post(url, data={"csat": "2", "comment": lines, "lang": "ko"})
    assert taken.status_code == 200, taken.text
    stored = feedback_service.scalar("SELECT comment FROM follow_ups WHERE feedback_id = :f", f=feedback_id)
    assert stored == "\n".join(["가" * 999] * 4)
    # Not ours: in the browser's language, saying what to do, without "How was your visit?".
    stranger = httpx.get(f"{url[:-3]}xyz", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert stranger.status_code == 404 and 'lang="en"' in stranger.text
    assert "This link cannot be opened" in stranger.text and "How did we do" not in stranger.text
    for header, language in (
        ("en;q=0, ko", "ko"),
        ("fr, en;q=0.1, ko;q=0.9", "ko"),
        ("*", "ko"),
        ("ja, en", "en"),
    ):
        page = httpx.get(f"{url[:-3]}xyz", headers={"Accept-Language": header})
        assert f'lang="{language}"' in page.text, header


def test_a_rating_without_words_is_asked_in_the_store_s_language(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """A CSAT 1 with no text has no language of ours: the survey is opened in "" (unknown), notify
    speaks the store's and says it in the link; without `lang` the page speaks Korean."""
    feedback_id = submit(feedback_service, key, "", ratings={"csat": 1})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    assert (
        feedback_service.scalar("SELECT language FROM follow_ups WHERE feedback_id = :f", f=feedback_id) == ""
    )
    token = follow_up_token(feedback_service, feedback_id)
    assert 'lang="ko"' in httpx.get(f"{feedback_service.url}/f/{token}").text
    assert 'lang="en"' in httpx.get(f"{feedback_service.url}/f/{token}?lang=en").text
    # Unhappy, in a few English words: the reopening item is asked as this case was (the store's
    # language again), not in its comment's.
    answer = httpx.post(
        f"{feedback_service.url}/f/{token}",
        json={"csat": 1, "comment": "still bad, charged 4111 1111 1111 1111"},
    )
    reopened_id = answer.json()["reopened_feedback_id"]
    # The card number in the comment is not kept, on the survey nor on the case it reopened.
    comment = "SELECT comment FROM follow_ups WHERE feedback_id = :f"
    assert feedback_service.scalar(comment, f=feedback_id) == "still bad, charged ***1111"
    assert feedback_service.scalar("SELECT text FROM feedback WHERE id = :f", f=reopened_id).endswith(
        "***1111"
    )
    alert_lifecycle(feedback_service, reopened_id, ack_after=20, resolve_after=200)
    assert (
        feedback_service.scalar("SELECT language FROM follow_ups WHERE feedback_id = :f", f=reopened_id) == ""
    )


def test_a_customer_who_switched_the_page_is_asked_again_in_its_language(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """Asked in Korean, answered unhappy on the page switched to English: the second ask (after
    the second fix) is in English, the language they chose, and the answered link's page too.
    An answer sent as JSON (an app, no page) leaves the language as it was."""
    feedback_id = submit(feedback_service, key, "국이 식어서 나왔어요", ratings={"csat": 1})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    token = follow_up_token(feedback_service, feedback_id)
    answer = httpx.post(f"{feedback_service.url}/f/{token}", data={"csat": "1", "lang": "en"})
    assert answer.status_code == 200 and 'lang="en"' in answer.text
    language = "SELECT language FROM follow_ups WHERE feedback_id = :f"
    assert feedback_service.scalar(language, f=feedback_id) == "en"
    reopened_id = feedback_service.scalar("SELECT id FROM feedback WHERE reopens_id = :f", f=feedback_id)
    alert_lifecycle(feedback_service, reopened_id, ack_after=20, resolve_after=200)
    wait_until(lambda: feedback_service.scalar(language, f=reopened_id) is not None)
    assert feedback_service.scalar(language, f=reopened_id) == "en"
    assert 'lang="en"' in httpx.get(f"{feedback_service.url}/f/{token}").text  # answered, in English


def test_praise_and_a_case_needing_no_action_ask_the_customer_nothing(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """A follow-up asks "was it put right?": praise (an info plan) had nothing to put right, and a
    case resolved as no action needed (a test entry, a duplicate) asks nothing either; the case
    says so. (The walk-through's customer got "was your praise matter dealt with?".)"""
    praise = submit(feedback_service, key, "직원분들이 너무 친절했어요!", ratings={"csat": 5})
    alert_lifecycle(
        feedback_service, praise, ack_after=30, resolve_after=60, priority="info", outcome="resolved"
    )
    test_entry = submit(feedback_service, key, "asdf 테스트", ratings={"csat": 3})
    alert_lifecycle(feedback_service, test_entry, ack_after=30, resolve_after=60, outcome="no_action_needed")
    for feedback_id, reason in ((praise, cases.NO_FOLLOW_UP_FYI), (test_entry, cases.NO_FOLLOW_UP_NO_ACTION)):
        item = feedback_service.get(feedback_id)
        (step,) = [t for t in item["timeline"] if t["kind"].startswith("follow_up_")]
        assert step["kind"] == "follow_up_not_requested" and step["detail"]["reason"] == reason
        assert step["detail"]["note"] == f"follow-up not asked: {reason}"
        assert item["follow_up"] is None
        assert not feedback_service.scalar(
            "SELECT count(*) FROM follow_ups WHERE feedback_id = :f", f=feedback_id
        )


def test_praise_resolved_before_its_alert_is_read_asks_nothing(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The resolution carries the alert's priority: a praise case whose `alert.resolved` is read
    before its `alert.created` (a redelivery, a consumer catching up) still asks the customer
    nothing. Without it the case had no priority yet and opened a survey."""
    praise = submit(feedback_service, key, "사장님이 너무 친절하세요", ratings={"csat": 5})
    alert_id = f"alert-{uuid.uuid4().hex[:8]}"
    now_ms = int(time.time() * 1000)
    resolved = events_pb2.AlertResolved(
        alert_id=alert_id, feedback_id=praise, staff_id="staff-1", outcome="resolved",
        resolved_at_ms=now_ms + 60_000, priority="info",
    )  # fmt: skip
    feedback_service.publish("voc.alert.resolved", resolved, f"{alert_id}-resolved")
    wait_until(lambda: feedback_service.get(praise)["status"] == "resolved")
    created = events_pb2.AlertCreated(
        alert_id=alert_id, feedback_id=praise, store_id=STORE, created_at_ms=now_ms, priority="info"
    )
    feedback_service.publish("voc.alert.created", created, f"{alert_id}-created")
    wait_until(lambda: any(t["kind"] == "alerted" for t in feedback_service.get(praise)["timeline"]))
    item = feedback_service.get(praise)
    (step,) = [t for t in item["timeline"] if t["kind"].startswith("follow_up_")]
    assert (step["kind"], step["detail"]["reason"]) == ("follow_up_not_requested", cases.NO_FOLLOW_UP_FYI)
    assert item["follow_up"] is None
    # A notify from before the field sends no priority: the case's own, set by the creation
    # read first, decides.
    older = submit(feedback_service, key, "음식이 맛있었어요", ratings={"csat": 5})
    created = events_pb2.AlertCreated(
        alert_id=f"{alert_id}-old", feedback_id=older, store_id=STORE, created_at_ms=now_ms, priority="info"
    )
    feedback_service.publish("voc.alert.created", created, f"{alert_id}-old-created")
    wait_until(lambda: feedback_service.get(older)["priority"] == "info")
    resolved = events_pb2.AlertResolved(
        alert_id=f"{alert_id}-old", feedback_id=older, staff_id="staff-1", outcome="resolved",
        resolved_at_ms=now_ms + 60_000,
    )  # fmt: skip
    feedback_service.publish("voc.alert.resolved", resolved, f"{alert_id}-old-resolved")
    wait_until(lambda: feedback_service.get(older)["status"] == "resolved")
    item = feedback_service.get(older)
    assert [t["kind"] for t in item["timeline"] if t["kind"].startswith("follow_up_")] == [
        "follow_up_not_requested"
    ]
    assert item["follow_up"] is None


def test_unhappy_follow_up_reopens_with_a_linked_item(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    feedback_id = submit(feedback_service, key, "국에서 머리카락이 나왔어요", ratings={"csat": 1})
    alert_lifecycle(feedback_service, feedback_id, ack_after=400, resolve_after=2400, escalate=True)
    token = follow_up_token(feedback_service, feedback_id)
    answer = httpx.post(
        f"{feedback_service.url}/f/{token}",
        json={"csat": 1, "revisit_intent": False, "comment": "Still not fixed."},
    )
    assert answer.status_code == 200, answer.text
    reopened_id = answer.json()["reopened_feedback_id"]
    assert answer.json()["feedback_id"] == feedback_id and reopened_id

    original = feedback_service.get(feedback_id)
    assert original["status"] == "reopened"
    assert (
        next(t for t in original["timeline"] if t["kind"] == "reopened")["detail"]["feedback_id"]
        == reopened_id
    )
    child = feedback_service.get(reopened_id)
    assert child["reopens_id"] == feedback_id and child["channel"] == "survey"
    assert child["classification"]["category"] == original["classification"]["category"]
    assert child["classification"]["severity"] in ("high", "critical")
    assert child["classification"]["sentiment"] == "negative" and child["touchpoint"] == "follow_up"
    # The new item goes out as voc.feedback.received, so notify alerts again (one alert per item).
    assert wait_until(
        lambda: feedback_service.scalar(
            "SELECT count(*) FROM outbox WHERE event_id = :e AND subject = 'voc.feedback.received' "
            "AND published_at IS NOT NULL",
            e=reopened_id,
        )
    )
    # Resolving the new item resolves the reopened case again.
    alert_lifecycle(feedback_service, reopened_id, ack_after=20, resolve_after=200)
    assert wait_until(lambda: feedback_service.get(feedback_id)["status"] == "resolved")
    # Its own follow-up asks in Korean, as the first did: the comment's English is not the
    # customer's language.
    assert child["classification"]["language"] == "en"
    page = httpx.get(f"{feedback_service.url}/f/{follow_up_token(feedback_service, reopened_id)}")
    assert page.status_code == 200 and 'lang="ko"' in page.text
    # Unhappy again: the case at the top of the chain reads reopened too, not "followed up".
    again = httpx.post(
        f"{feedback_service.url}/f/{follow_up_token(feedback_service, reopened_id)}", json={"csat": 1}
    )
    assert again.status_code == 200, again.text
    third_id = again.json()["reopened_feedback_id"]
    assert feedback_service.get(reopened_id)["status"] == "reopened"
    root = feedback_service.get(feedback_id)
    assert root["status"] == "reopened"
    reopenings = [t["detail"] for t in root["timeline"] if t["kind"] == "reopened"]
    assert reopenings[-1] == {"feedback_id": third_id, "via_feedback_id": reopened_id}


def test_a_reopened_case_keeps_its_category_unless_the_answer_plainly_names_another(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The answer is about the case: a comment on the remedy ("refund received but still
    uneasy", billing at 0.51) paged the billing plan on a food-safety case (apps review). Only
    a comment the classifier is sure names another issue (0.8 or more) moves it; the event says
    which case it reopens, so the staff app and the push say "reopened"."""
    answers = [
        ("환불은 받았지만 아직도 찝찝합니다.", None),  # stays with the case
        ("이번엔 카드 결제가 두 번 됐어요. 이중 결제 취소해 주세요", "billing_payment"),
    ]
    for comment, category in answers:
        feedback_id = submit(
            feedback_service, key, "국에서 머리카락이 나왔어요. 위생 문제예요", ratings={"csat": 1}
        )
        alert_lifecycle(feedback_service, feedback_id, ack_after=60, resolve_after=600)
        token = follow_up_token(feedback_service, feedback_id)
        answer = httpx.post(f"{feedback_service.url}/f/{token}", json={"csat": 1, "comment": comment})
        assert answer.status_code == 200, answer.text
        child_id = answer.json()["reopened_feedback_id"]
        original, child = feedback_service.get(feedback_id), feedback_service.get(child_id)
        expected = category or original["classification"]["category"]
        assert child["classification"]["category"] == expected, (comment, child["classification"])
        payload = feedback_service.scalar(
            "SELECT payload FROM outbox WHERE event_id = :e AND subject = 'voc.feedback.received'", e=child_id
        )
        assert events_pb2.FeedbackReceived.FromString(bytes(payload)).reopens_id == feedback_id


def test_record_outcome_over_grpc_opens_the_follow_up(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    feedback_id = submit(feedback_service, key, "Card was charged twice", ratings={"csat": 2})
    target = feedback_service.grpc_target

    async def call() -> str:
        async with aio.insecure_channel(target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            metadata = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
            for status in ("acknowledged", "resolved"):
                answer = await stub.RecordOutcome(
                    feedback_pb2.RecordOutcomeRequest(
                        feedback_id=feedback_id,
                        status=status,
                        outcome="compensated",
                        staff_id="s-9",
                        event_id=f"grpc-{status}-{feedback_id}",
                    ),
                    metadata=metadata,
                )
            return str(answer.status)

    assert run_async(call) == "resolved"
    assert follow_up_token(feedback_service, feedback_id)


def outcome_codes(
    service: FeedbackService, *requests: feedback_pb2.RecordOutcomeRequest
) -> list[tuple[grpc.StatusCode, str]]:
    """Each RecordOutcome request's status code and details (OK and "" when it was recorded)."""

    async def call() -> list[tuple[grpc.StatusCode, str]]:
        codes = []
        metadata = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
        async with aio.insecure_channel(service.grpc_target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            for request in requests:
                try:
                    await stub.RecordOutcome(request, metadata=metadata)
                    codes.append((grpc.StatusCode.OK, ""))
                except aio.AioRpcError as exc:
                    codes.append((exc.code(), exc.details() or ""))
        return codes

    return run_async(call)


def test_record_outcome_refuses_what_rest_would_refuse(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """A time no date holds (stored, it made GET /v1/feedback/{id} a 500 for good), an outcome
    outside the REST list, a note, staff id or ids past their limits: INVALID_ARGUMENT, nothing
    stored."""
    feedback_id = submit(feedback_service, key, "Coffee machine broken again")

    def resolve(**fields: Any) -> feedback_pb2.RecordOutcomeRequest:
        given = {"feedback_id": feedback_id, "status": "resolved", "outcome": "compensated", **fields}
        return feedback_pb2.RecordOutcomeRequest(**given)

    bad = [
        resolve(at_ms=-(2**62)),
        resolve(at_ms=2**62),
        resolve(at_ms=900_000_000_000),  # 1998
        resolve(outcome="refunded; DROP TABLE"),
        resolve(note="n" * 2001),
        resolve(note="n" * 1_000_000),
        resolve(staff_id="s" * 100_000),
        resolve(staff_id="staff one"),
        resolve(alert_id="a" * 1000),
        resolve(event_id="e" * 1000),
        feedback_pb2.RecordOutcomeRequest(feedback_id=feedback_id, status="acknowledged", outcome="whatever"),
    ]
    answers = outcome_codes(feedback_service, *bad)
    assert [code for code, _ in answers] == [grpc.StatusCode.INVALID_ARGUMENT] * len(bad), answers
    assert all(len(details) < 200 for _, details in answers), answers
    item = feedback_service.get(feedback_id)
    assert item["status"] != "resolved" and [t["kind"] for t in item["timeline"]] == ["received"]
    # What REST allows still goes through: a note at the limit, a staff id, a time just now.
    ok = resolve(note="n" * 2000, staff_id="s-1.a_B", at_ms=int(time.time() * 1000))
    assert outcome_codes(feedback_service, ok) == [(grpc.StatusCode.OK, "")]
    assert feedback_service.get(feedback_id)["status"] == "resolved"


def test_get_feedback_refuses_an_id_no_item_can_have(feedback_service: FeedbackService) -> None:
    """A 3 MB id was echoed into NOT_FOUND's message, past the message limit (RESOURCE_EXHAUSTED)."""

    async def call(feedback_id: str) -> tuple[grpc.StatusCode, str]:
        async with aio.insecure_channel(feedback_service.grpc_target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            try:
                await stub.GetFeedback(
                    feedback_pb2.GetFeedbackRequest(feedback_id=feedback_id),
                    metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),),
                )
            except aio.AioRpcError as exc:
                return exc.code(), exc.details() or ""
            return grpc.StatusCode.OK, ""

    for feedback_id in ("x" * 3_000_000, "x" * 37, ""):
        code, details = run_async(partial(call, feedback_id))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and len(details) < 200, (code, details[:200])
    assert run_async(partial(call, "0" * 36)) == (grpc.StatusCode.NOT_FOUND, f"no feedback {'0' * 36}")


BAD_ANSWERS = [
    ({"csat": 0}, "body.csat"),
    ({"csat": 6}, "body.csat"),
    ({"csat": "5"}, "body.csat"),
    ({}, "body.csat"),
    ({"csat": 3, "comment": "x" * 4001}, "body.comment"),
    ({"csat": 3, "mood": "meh"}, "body.mood"),
]


def test_bad_follow_up_answers(feedback_service: FeedbackService, key: dict[str, Any]) -> None:
    feedback_id = submit(feedback_service, key, "Table was sticky")
    alert_lifecycle(feedback_service, feedback_id, ack_after=10, resolve_after=50)
    token = follow_up_token(feedback_service, feedback_id)
    url = f"{feedback_service.url}/f/{token}"
    for body, field in BAD_ANSWERS:
        answer = problem(httpx.post(url, json=body), 422)
        assert field in {e["field"] for e in answer["errors"]}, answer
    # An unreadable JSON body is 400 with the project's words, as on every other route.
    unreadable = problem(httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}), 400)
    assert unreadable["detail"] == "The body is not valid JSON."
    problem(httpx.post(url, content=b"csat=5", headers={"Content-Type": "text/plain"}), 415)
    # A form with no rating re-renders the page with the error (a person is reading it).
    form = httpx.post(url, data={"comment": "hi", "lang": "en"})
    assert form.status_code == 422 and "choose a satisfaction level" in form.text
    # A rating that is a digit only to str.isdigit ("²"), or too long for int(), is drawn again
    # the same way, the comment kept, never a 500.
    for csat in ("\u00b2", "5" * 5000, "\u0665", "-1", "5.0"):
        form = httpx.post(url, data={"csat": csat, "comment": "still here", "lang": "en"})
        assert form.status_code == 422, (csat[:10], form.status_code, form.text[:200])
        assert form.headers["content-type"].startswith("text/html") and "still here" in form.text
    # Forged and tampered tokens are not found.
    problem(httpx.post(f"{feedback_service.url}/f/{token[:-2]}xx", json={"csat": 5}), 404)
    assert httpx.get(f"{feedback_service.url}/f/not-a-token").status_code == 404
    # Nothing was recorded: the link still works.
    assert (
        feedback_service.scalar("SELECT answered_at FROM follow_ups WHERE feedback_id = :f", f=feedback_id)
        is None
    )
    assert feedback_service.get(feedback_id)["status"] == "resolved"
    assert httpx.get(url).status_code == 200


def test_loop_kpis(feedback_service: FeedbackService) -> None:
    """A store of its own with known timings: 3 cases, acks after 60/120/900 s, resolves after
    600/1200/4000 s; one escalated; one complaint recovered, one not."""
    store = "kpi-store"
    key = feedback_service.new_key(store, name="kpi app")
    ids = []
    for text, csat, revisit in (
        ("직원이 불친절했어요", 1, True),
        ("Food was cold", 2, False),
        ("Waited an hour", 1, True),
        ("Lovely staff, great coffee", 5, True),
    ):
        r = feedback_service.post(
            key,
            {
                "store_id": store,
                "channel": "app",
                "text": text,
                "ratings": {"csat": csat, "nps": 10 if csat == 5 else 2},
                "revisit_intent": revisit,
            },
        )
        ids.append(r.json()["id"])
    alert_lifecycle(feedback_service, ids[0], ack_after=60, resolve_after=600, store=store)
    alert_lifecycle(feedback_service, ids[1], ack_after=120, resolve_after=1200, store=store)
    alert_lifecycle(feedback_service, ids[2], ack_after=900, resolve_after=4000, escalate=True, store=store)
    # Notify's follow-up messages (#19): two customers got the link, the first after a retry and
    # the second by SMS once its e-mail bounced; the third case's mail bounced and nothing went
    # after it (a delivery report): not counted as reached.
    sent_at = time.time() - 60
    for n, (feedback_id, outcome, channel) in enumerate(
        (
            (ids[0], "retrying", "email"),
            (ids[0], "sent", "email"),
            (ids[1], "sent", "email"),
            (ids[1], "undelivered", "email"),
            (ids[1], "sent", "sms"),
            (ids[2], "sent", "email"),
            (ids[2], "undelivered", "email"),
        )
    ):
        feedback_service.publish(
            "voc.notify.follow_up_sent",
            events_pb2.FollowUpSent(
                feedback_id=feedback_id,
                store_id=store,
                channel=channel,
                outcome=outcome,
                attempt=n,
                at_ms=int((sent_at + n) * 1000),
            ),
            f"follow-up-sent-{feedback_id}-{n}",
        )
    wait_until(
        lambda: (
            sum(
                t["kind"].startswith("follow_up_") and t["kind"] != "follow_up_requested"
                for i in ids[:3]
                for t in feedback_service.get(i)["timeline"]
            )
            == 7
        )
    )
    for feedback_id, csat in ((ids[0], 5), (ids[1], 2)):
        token = follow_up_token(feedback_service, feedback_id)
        answer = {"csat": csat, "revisit_intent": False}
        assert httpx.post(f"{feedback_service.url}/f/{token}", json=answer).status_code == 200

    body = httpx.get(
        f"{feedback_service.url}/v1/analytics", params={"store_id": store}, headers=feedback_service.admin
    ).json()
    loop = body["loop"]
    # The reopened item (from the csat 2 answer) counts in volume but is not yet alerted.
    assert body["volume"] == 5 and loop["cases"] == 3
    assert loop["time_to_acknowledge_seconds"]["p50"] == pytest.approx(120, abs=1.5)
    assert loop["time_to_acknowledge_seconds"]["p90"] == pytest.approx(900, abs=1.5)
    assert loop["time_to_resolve_seconds"]["p50"] == pytest.approx(1200, abs=1.5)
    assert loop["sla_breach_rate"] == pytest.approx(1 / 3, abs=0.001)  # only the escalated 900/4000 s case
    assert loop["follow_ups_sent"] == 3 and loop["follow_ups_answered"] == 2
    assert loop["follow_ups_messaged"] == 3 and loop["follow_ups_undelivered"] == 1
    assert loop["follow_up_answer_rate"] == 1.0  # of the two messages that reached their customers
    assert loop["recovery_rate"] == 0.5 and loop["recovery_answers"] == 2 and loop["reopened"] == 1
    # Intake's three yes of four, the happy answer's no, and the unhappy answer's no counted once
    # (on the item it reopened with).
    assert loop["revisit_intent_rate"] == pytest.approx(3 / 6, abs=0.001)
    assert body["nps"]["responses"] == 4 and body["nps"]["score"] == pytest.approx(-50.0)
    assert body["csat"]["responses"] == 5
    assert body["sentiment"]["negative"] == 4 and body["sentiment_index"] == pytest.approx(-60.0)
    assert sum(body["category_mix"].values()) == 5
    assert body["trend"] and sum(d["volume"] for d in body["trend"]) == 5
    assert body["by_store"][0]["store_id"] == store
    open_cases = httpx.get(
        f"{feedback_service.url}/v1/analytics/open-cases",
        params={"store_id": store},
        headers=feedback_service.admin,
    ).json()["cases"]
    # Open: the praise nobody has handled, the reopened case and the item that reopened it.
    assert {c["id"] for c in open_cases} == {ids[1], ids[3], body_reopened(feedback_service, ids[1])}
    assert all(c["age_seconds"] >= 0 for c in open_cases)


def body_reopened(service: FeedbackService, feedback_id: str) -> str:
    return str(service.get(feedback_id)["follow_up"]["reopened_feedback_id"])


def test_the_answer_rate_is_of_the_messages_that_reached_and_never_passes_one() -> None:
    """Five items messaged; c's and d's mail bounced with nothing after, yet d's customer answered
    (the link arrived after all: a forwarded mail); x was answered at the counter, never messaged.
    answered / (messaged - undelivered) said 3 / 4; it is 2 of the 4 that reached."""
    answered = frozenset({"a", "d", "x"})
    messaged = frozenset({"a", "b", "c", "d", "e"})
    assert analytics.answer_rate(answered, messaged=messaged, undelivered=frozenset({"c", "d"})) == 0.5
    # Every message bounced and one was answered anyway: 1 of 1, not 1 of 0.
    assert (
        analytics.answer_rate(frozenset({"a"}), messaged=frozenset({"a"}), undelivered=frozenset({"a"}))
        == 1.0
    )
    assert analytics.answer_rate(answered, messaged=frozenset(), undelivered=frozenset()) is None


def test_praise_on_an_info_plan_is_listed_but_is_no_open_case(feedback_service: FeedbackService) -> None:
    """An item whose alert carries an info plan (praise: "참고 / FYI" in the staff app) is told to
    the team with nothing to close: it stays in the feedback list, and is out of the open cases,
    the open count, the times and the SLA (notify's resolve timer escalates it after a day: no
    breach). A complaint's normal alert stays open, and a later, lower priority of one of its
    alerts (events out of order) does not lower it."""
    store = "fyi-store"
    key = feedback_service.new_key(store, name="fyi app")
    ids: dict[str, str] = {}
    for name, text in (("praise", "Lovely staff, great coffee"), ("complaint", "Food was cold")):
        r = feedback_service.post(key, {"store_id": store, "channel": "app", "text": text})
        assert r.status_code == 202, r.text
        ids[name] = str(r.json()["id"])
    received = {
        n: datetime.fromisoformat(feedback_service.get(i)["received_at"]).timestamp() for n, i in ids.items()
    }
    ms = lambda name, seconds: int((received[name] + seconds) * 1000)  # noqa: E731
    for name, n, priority in (("praise", 0, "info"), ("complaint", 0, "normal"), ("complaint", 1, "info")):
        feedback_service.publish(
            "voc.alert.created",
            events_pb2.AlertCreated(
                alert_id=f"fyi-{name}-{n}",
                feedback_id=ids[name],
                store_id=store,
                priority=priority,
                created_at_ms=ms(name, 0.2),
            ),
            f"fyi-{name}-{n}-created",
        )
    praise_alert = "fyi-praise-0"
    feedback_service.publish(
        "voc.alert.escalated",
        events_pb2.AlertEscalated(
            alert_id=praise_alert, feedback_id=ids["praise"], level=-1, escalated_at_ms=ms("praise", 86400)
        ),
        f"{praise_alert}-escalated",
    )
    feedback_service.publish(
        "voc.alert.acknowledged",
        events_pb2.AlertAcknowledged(
            alert_id=praise_alert,
            feedback_id=ids["praise"],
            staff_id="staff-1",
            acknowledged_at_ms=ms("praise", 4 * 3600),
        ),
        f"{praise_alert}-ack",
    )
    praise = wait_until(lambda: (p := feedback_service.get(ids["praise"]))["status"] == "acknowledged" and p)
    wait_until(
        lambda: [t["kind"] for t in feedback_service.get(ids["complaint"])["timeline"]].count("alerted") == 2
    )
    wait_until(lambda: any(t["kind"] == "escalated" for t in feedback_service.get(ids["praise"])["timeline"]))
    assert praise["priority"] == "info"
    assert feedback_service.get(ids["complaint"])["priority"] == "normal"

    listed = httpx.get(
        f"{feedback_service.url}/v1/feedback", params={"store_id": store}, headers=feedback_service.admin
    ).json()["items"]
    assert {i["id"]: i["priority"] for i in listed} == {ids["praise"]: "info", ids["complaint"]: "normal"}
    open_cases = httpx.get(
        f"{feedback_service.url}/v1/analytics/open-cases",
        params={"store_id": store},
        headers=feedback_service.admin,
    ).json()["cases"]
    assert [c["id"] for c in open_cases] == [ids["complaint"]]
    loop = httpx.get(
        f"{feedback_service.url}/v1/analytics", params={"store_id": store}, headers=feedback_service.admin
    ).json()["loop"]
    assert (loop["cases"], loop["open"], loop["fyi"]) == (1, 1, 1)
    assert loop["time_to_acknowledge_seconds"]["n"] == 0  # the praise's 4 h is no case's time
    assert loop["sla_breach_rate"] == 0.0  # the complaint is minutes old; the praise escalated, no case


def test_an_answer_that_reopens_a_case_is_not_another_recurring_issue(
    feedback_service: FeedbackService,
) -> None:
    """The unhappy answer is the customer's verdict on the case it reopens, not a second
    complaint: the repeat issues count the incident once; its score still counts (CSAT)."""
    store = "reopen-issues-store"
    key = feedback_service.new_key(store, name="reopen app")
    text = "국에서 머리카락이 나왔어요. 위생 문제예요"

    def post(csat: int) -> str:
        r = feedback_service.post(
            key, {"store_id": store, "channel": "kiosk", "text": text, "ratings": {"csat": csat}}
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def analytics() -> dict[str, Any]:
        response = httpx.get(
            f"{feedback_service.url}/v1/analytics", params={"store_id": store}, headers=feedback_service.admin
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    case_id = post(1)
    alert_lifecycle(feedback_service, case_id, ack_after=60, resolve_after=600, store=store)
    token = follow_up_token(feedback_service, case_id)
    answer = httpx.post(f"{feedback_service.url}/f/{token}", json={"csat": 1})
    assert answer.status_code == 200, answer.text
    child = feedback_service.get(answer.json()["reopened_feedback_id"])
    category = feedback_service.get(case_id)["classification"]["category"]
    assert child["reopens_id"] == case_id and child["classification"]["category"] == category

    body = analytics()
    assert body["volume"] == 2 and body["csat"]["responses"] == 2  # the answer's score counts
    assert body["top_issues"] == []  # one incident: no recurring issue

    # Another complaint of the same kind is one: two complaints, not three.
    again = post(2)
    assert feedback_service.get(again)["classification"]["category"] == category
    [issue] = analytics()["top_issues"]
    assert (issue["store_id"], issue["category"], issue["count"]) == (store, category, 2)


def test_a_store_key_never_sees_the_follow_up_link(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The link answers the survey as the customer: a store could fill in its own customers'
    surveys with it (#21 finding 9). The admin still sees it; the store sees the rest."""
    feedback_id = submit(feedback_service, key, "주문이 늦게 나왔어요", ratings={"csat": 2})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=300)
    follow_up_token(feedback_service, feedback_id)  # open, and shown to the admin
    as_store = httpx.get(f"{feedback_service.url}/v1/feedback/{feedback_id}", headers=key["headers"])
    assert as_store.status_code == 200, as_store.text
    follow_up = as_store.json()["follow_up"]
    assert follow_up is not None and follow_up["answered_at"] is None and follow_up["expires_at"]
    assert follow_up["url"] is None
    assert "/f/" not in as_store.text


def test_an_answer_on_an_expired_link_is_given_back(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The route's two ways to a closed link with a comment in hand: a valid answer, and one
    refused for its fields; both show the comment back, escaped."""
    feedback_id = submit(feedback_service, key, "국이 식어서 나왔어요", ratings={"csat": 1})
    alert_lifecycle(feedback_service, feedback_id, ack_after=30, resolve_after=600)
    token = follow_up_token(feedback_service, feedback_id)
    feedback_service.execute("UPDATE follow_ups SET expires_at = 0 WHERE feedback_id = :f", f=feedback_id)
    url = f"{feedback_service.url}/f/{token}"
    for form in (
        {"csat": "1", "comment": "<i>아직</i> 식어요"},
        {"csat": "9", "comment": "<i>아직</i> 식어요"},
    ):
        closed = httpx.post(url, data={**form, "lang": "ko"})
        assert closed.status_code == 410 and "<h1>답변 기간이 지났습니다</h1>" in closed.text, closed.text
        assert '<blockquote class="kept">&lt;i&gt;아직&lt;/i&gt; 식어요</blockquote>' in closed.text
    assert (
        feedback_service.scalar("SELECT csat FROM follow_ups WHERE feedback_id = :f", f=feedback_id) is None
    )


def test_an_expired_link_gives_back_what_was_written() -> None:
    """The answer cannot be taken once the link expired; what the customer wrote is shown back
    (escaped), so it is not lost with the page. An answered link says only that."""
    page = pages.follow_up_closed(pages.CLOSED_EXPIRED, "ko", comment="<b>아직도 식어요</b>\n두 번째 줄")
    assert "<h1>답변 기간이 지났습니다</h1>" in page and "전달되지 않았습니다" in page
    assert '<blockquote class="kept">&lt;b&gt;아직도 식어요&lt;/b&gt;\n두 번째 줄</blockquote>' in page
    answered = pages.follow_up_closed(pages.CLOSED_ANSWERED, "en", comment="again")
    assert "Already answered" in answered and "again" not in answered
