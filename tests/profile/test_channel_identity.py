"""Channel ids across submissions: a CRM customer's app user id, a chatbot session that once came
with a phone number, and later submissions that carry nothing but the channel id all land on the
one customer — through the real `voc.feedback.received` consumer, the REST context and timeline,
and gRPC GetCustomerContext as notify calls it."""

from __future__ import annotations

import time
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import select

from tests.profile.conftest import Grpc, Profile
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc.profile.v1 import profile_pb2
from voc_profile import events
from voc_profile.models import Customer, Identifier


async def submit(
    profile: Profile, feedback_id: str, *, channel: str, minutes_ago: float, **customer: str
) -> None:
    """One `voc.feedback.received`, as the feedback service publishes it, to profile's consumer."""
    event = events_pb2.FeedbackReceived(
        facts=common_pb2.FeedbackFacts(
            feedback_id=feedback_id,
            store_id="store-gangnam",
            channel=channel,
            category="wait_time",
            sentiment="negative",
            severity="medium",
            ratings=common_pb2.Ratings(csat=2),
            occurred_at_ms=int((time.time() - minutes_ago * 60) * 1000),
        ),
        # The feedback service names the submission's channel next to the channel user id.
        customer=common_pb2.CustomerIdentifiers(channel=channel, **customer),
    )
    handle = events.consumers(profile.database, profile.settings)[0].handler
    await handle(
        Msg(
            _client=None,  # type: ignore[arg-type]  # the handler never replies or acks itself
            subject="voc.feedback.received",
            data=event.SerializeToString(),
            headers={"Nats-Msg-Id": f"received:{feedback_id}"},
        )
    )


async def linked(profile: Profile) -> dict[str, str]:
    return {
        e.feedback_id: e.customer_id
        for e in map(
            events_pb2.FeedbackLinked.FromString, await profile.events("voc.profile.feedback_linked")
        )
    }


async def context(profile: Profile, customer_id: str) -> dict[str, Any]:
    response = await profile.client.get(f"/v1/customers/{customer_id}/context", headers=profile.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_app_user_and_chatbot_session_find_the_same_customer(rpc: Grpc) -> None:
    profile = rpc.profile
    crm = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={
            "customers": [
                {"loyalty_id": "L-5001", "phone": "010-4321-8765", "app_user_id": "U-77", "name": "한채널"}
            ]
        },
    )
    customer_id = crm.json()[0]["customer_id"]
    assert customer_id and crm.json()[0]["created"] is True

    # 1. In the app, signed in: only the app user id.
    await submit(profile, "fb-app-1", channel="app", minutes_ago=30, channel_user_id="U-77")
    # 2. The chatbot: a new session, and the customer types their phone number.
    await submit(
        profile,
        "fb-bot-1",
        channel="chatbot",
        minutes_ago=20,
        channel_user_id="sess-9",
        phone="+82 10 4321 8765",
    )
    # 3. The same chatbot session later: nothing but the session id.
    await submit(profile, "fb-bot-2", channel="chatbot", minutes_ago=10, channel_user_id="sess-9")
    # 4. The app again, with the user id only.
    await submit(profile, "fb-app-2", channel="app", minutes_ago=5, channel_user_id="U-77")

    assert await linked(profile) == dict.fromkeys(
        ("fb-app-1", "fb-bot-1", "fb-bot-2", "fb-app-2"), customer_id
    )
    assert await profile.count(Customer) == 1
    ctx = await context(profile, customer_id)
    assert ctx["feedback_count"] == 4 and ctx["name"] == "한채널"
    assert ctx["signals"]["repeat_issue"] is True and ctx["signals"]["repeat_counts"] == {"wait_time": 4}
    timeline = (
        await profile.client.get(f"/v1/customers/{customer_id}/timeline", headers=profile.admin)
    ).json()["entries"]
    assert [(e["feedback_id"], e["channel"]) for e in timeline] == [
        ("fb-app-2", "app"),
        ("fb-bot-2", "chatbot"),
        ("fb-bot-1", "chatbot"),
        ("fb-app-1", "app"),
    ]

    # The chatbot session is now one of the customer's identifiers, next to the CRM ones.
    export = (await profile.client.get(f"/v1/customers/{customer_id}/export", headers=profile.admin)).json()
    kinds = sorted((i["kind"], i["value"]) for i in export["identifiers"])
    assert kinds == [
        ("channel", "app:U-77"),
        ("channel", "chatbot:sess-9"),
        ("loyalty", "L-5001"),
        ("phone", "+821043218765"),
    ]

    # notify's lookup by the session id alone finds them (no write: nothing new to attach).
    answer = await rpc.stub.GetCustomerContext(
        profile_pb2.GetCustomerContextRequest(
            identifiers=common_pb2.CustomerIdentifiers(channel="chatbot", channel_user_id="sess-9")
        )
    )
    assert answer.context.found and answer.context.customer_id == customer_id
    assert answer.context.feedback_count == 4 and answer.context.masked_phone == "***-8765"
    resolved = await rpc.resolve(create=False, channel="app", channel_user_id="U-77")
    assert resolved.customer_id == customer_id


async def test_a_channel_id_is_only_the_same_person_on_the_same_channel(rpc: Grpc) -> None:
    profile = rpc.profile
    await submit(profile, "fb-a", channel="app", minutes_ago=3, channel_user_id="12345")
    await submit(profile, "fb-b", channel="chatbot", minutes_ago=2, channel_user_id="12345")
    owners = await linked(profile)
    # An app user 12345 and chatbot session 12345 are different people until something joins them.
    assert owners["fb-a"] != owners["fb-b"] and await profile.count(Customer) == 2
    async with profile.database.session() as session:
        values = sorted(await session.scalars(select(Identifier.value).where(Identifier.kind == "channel")))
    assert values == ["app:12345", "chatbot:12345"]
    # The app user later gives an e-mail in the chatbot session: now one person (a recorded merge).
    await submit(
        profile, "fb-c", channel="chatbot", minutes_ago=1, channel_user_id="12345", email="same@example.com"
    )
    await submit(
        profile, "fb-d", channel="app", minutes_ago=0.5, channel_user_id="12345", email="same@example.com"
    )
    owners = await linked(profile)
    survivor = min(owners["fb-a"], owners["fb-b"])  # the older customer survives
    # Every item now links to the survivor (the moved ones were linked again).
    assert owners == dict.fromkeys(("fb-a", "fb-b", "fb-c", "fb-d"), survivor)
    merges = (await profile.client.get(f"/v1/customers/{survivor}/merges", headers=profile.admin)).json()[
        "merges"
    ]
    assert len(merges) == 1 and merges[0]["trigger"] == "feedback fb-d"
    assert (await context(profile, survivor))["feedback_count"] == 4
