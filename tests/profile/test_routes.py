"""The REST API as routers (`voc_profile.routes`): every route but the probes needs the admin
token, whichever router it is on; a list cursor decodes to the position it was made from."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.profile.conftest import Profile, assert_problem
from voc_platform.errors import Invalid
from voc_profile.api import ROUTERS, build_app
from voc_profile.deps import decode_cursor, encode_cursor


async def test_every_route_needs_a_credential(profile: Profile) -> None:
    """No token, or one that is neither the admin token nor a staff token: 401 everywhere (who
    may do what with a staff token: tests/security/test_authz_matrix.py). Every route but the
    check-in (`POST /v1/visits`, store keys too: tests/profile/test_visits.py)."""
    app = build_app(profile.settings, profile.database, profile.trail)
    routes = [r for module in ROUTERS for r in module.router.routes if isinstance(r, APIRoute)]
    routes = [r for r in routes if r.path != "/v1/visits"]
    assert len(routes) == 17  # GET /v1/audit is the platform's (voc_platform.audit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile") as client:
        for route in routes:
            path = route.path.replace("{customer_id}", "someone").replace("{merge_id}", "some-merge")
            path = path.replace("{assignment_id}", "some-assignment")
            for method in route.methods:
                response = await client.request(method, path, params={"signal": "vip"})
                assert_problem(response, 401)
                wrong = await client.request(method, path, headers={"Authorization": "Bearer nope"})
                assert_problem(wrong, 401)


def test_a_cursor_names_the_position_it_was_made_from() -> None:
    for after in ((0, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), (17, "x")):
        assert decode_cursor(encode_cursor(after)) == after
    for bad in ("%%%", encode_cursor((1, "x"))[:-2] + "!!", "WzEsMl0"):  # the last: [1,2]
        with pytest.raises(Invalid):
            decode_cursor(bad)


def test_a_cursor_holds_an_sql_integer_and_a_customer_id() -> None:
    """A count past int64 reached SQLite's driver (OverflowError, 500), past int32 PostgreSQL's
    (the column is an INTEGER); a boolean, a NUL or an id longer than a customer id is none this
    API issued either."""
    for edge in ((2**31 - 1, "x"), (-(2**31), "x")):
        assert decode_cursor(encode_cursor(edge)) == edge
    tampered = [f'[{n}, "x"]' for n in (2**63, 2**31, -(2**31) - 1, -(2**63) - 1, int("9" * 4000))]
    tampered += ['[true, "x"]', '[1.0, "x"]', '[1, ""]', '[1, "a\\u0000"]', f'[1, "{"x" * 37}"]']
    for text in tampered:
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        with pytest.raises(Invalid):
            decode_cursor(cursor)


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_a_tampered_cursor_is_422_before_anything_is_streamed(profile: Profile, fmt: str) -> None:
    # base64 of [9223372036854775808, "x"]: the CSV export answered 200 and then broke off; past
    # int32 did so on PostgreSQL.
    for cursor in ("WzkyMjMzNzIwMzY4NTQ3NzU4MDgsICJ4Il0", encode_cursor((2**31, "x"))):
        response = await profile.client.get(
            "/v1/customers",
            params={"signal": "chronic_complainer", "cursor": cursor, "format": fmt},
            headers=profile.admin,
        )
        assert assert_problem(response, 422)["errors"][0]["field"] == "query.cursor"
    largest = encode_cursor((2**31 - 1, "x"))
    fine = await profile.client.get(
        "/v1/customers",
        params={"signal": "chronic_complainer", "cursor": largest, "format": fmt},
        headers=profile.admin,
    )
    assert fine.status_code == 200, fine.text
