"""The follow-up survey at `/f/{token}` (public, no login: the signed one-time token is the
credential): the page, its stylesheet, and the answer as an HTML form (answered with pages) or
as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import ValidationError

from voc_feedback import pages
from voc_feedback.deps import FollowUpLinksDep
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.follow_ups import AlreadyAnswered, answer_follow_up, asked_language, get_follow_up
from voc_feedback.schemas import FollowUpAnswer
from voc_feedback.stores import store_names
from voc_platform.db import Database
from voc_platform.errors import BadRequest, DomainError, FieldError, Invalid, Unsupported
from voc_platform.http import DatabaseDep, SessionDep

router = APIRouter(include_in_schema=False)
# More digits than any rating has; a longer run is left a string for validation to refuse
# (int() of thousands of digits raises, and is work for nothing).
_MAX_RATING_DIGITS = 3
STYLESHEET = Path(__file__).resolve().parents[1] / "static" / "follow-up.css"


@router.get(pages.STYLESHEET)
async def follow_up_stylesheet() -> FileResponse:
    return FileResponse(STYLESHEET, media_type="text/css; charset=utf-8")


def _closed_reason(closed: DomainError) -> str:
    """Which page a link that takes no answer gets: not ours (404), answered, or expired."""
    if closed.status == 404:
        return pages.CLOSED_INVALID
    return pages.CLOSED_ANSWERED if isinstance(closed, AlreadyAnswered) else pages.CLOSED_EXPIRED


def _browser_language(request: Request) -> str:
    """The page language the browser prefers most (Accept-Language, by q; q=0 is "not this"),
    else "ko": a link that is not ours has no language of its own."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(request.headers.get("accept-language", "").split(",")[:32]):
        tag, _, params = part.partition(";")
        language = tag.strip().lower().split("-", 1)[0]
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if language in pages.LANGUAGES and quality > 0:
            ranked.append((-quality, order, language))
    return min(ranked)[2] if ranked else "ko"


@router.get("/f/{token}", response_class=HTMLResponse)
async def follow_up_page(
    token: str, request: Request, session: SessionDep, links: FollowUpLinksDep, lang: str | None = None
) -> HTMLResponse:
    try:
        follow, row = await get_follow_up(session, token=token, secret=links.secret)
    except DomainError as closed:
        asked = await asked_language(session, token=token, secret=links.secret)
        language = pages.language_of(lang, default=asked or _browser_language(request))
        return HTMLResponse(
            pages.follow_up_closed(_closed_reason(closed), language), status_code=closed.status
        )
    language = pages.language_of(lang, default=follow.language)
    names = await store_names(session)
    return HTMLResponse(
        pages.follow_up_form(token=token, language=language, store_name=names.get(row.store_id, ""))
    )


class _Submitted(NamedTuple):
    as_form: bool  # a person is reading the answer: HTML pages, not problem+json
    language: str
    answer: FollowUpAnswer | None  # None: invalid
    errors: list[FieldError]
    # What a form gave, to show it again with the error (a comment must not be lost).
    comment: str = ""
    revisit: bool | None = None
    csat: int | None = None


async def _read_answer(request: Request) -> _Submitted:
    """The answer as the form or the JSON body sent it (415 for anything else)."""
    content_type = request.headers.get("content-type", "")
    as_form = content_type.startswith("application/x-www-form-urlencoded")
    raw = await request.body()
    language = "ko"
    given: dict[str, Any] = {}
    try:
        if as_form:
            fields = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            language = pages.language_of(fields.pop("lang", None))
            given = {
                "csat": _rating(fields.get("csat")),
                "comment": fields.get("comment") or None,
                # Anything but yes, no or nothing is left as sent, for validation to refuse.
                "revisit_intent": _REVISIT.get(
                    fields.get("revisit_intent", ""), fields.get("revisit_intent")
                ),
            }
            return _Submitted(as_form, language, FollowUpAnswer.model_validate(given), [])
        if content_type.startswith("application/json"):
            return _Submitted(as_form, language, FollowUpAnswer.model_validate_json(raw), [])
        raise Unsupported("Send the answer as a form or as JSON.")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            # The same answer as every other route gives an unreadable JSON body.
            raise BadRequest("The body is not valid JSON.") from None
        errors = [FieldError(".".join(["body", *(str(p) for p in e["loc"])]), e["msg"]) for e in exc.errors()]
        comment, revisit, csat = given.get("comment"), given.get("revisit_intent"), given.get("csat")
        return _Submitted(
            as_form,
            language,
            None,
            errors,
            comment if isinstance(comment, str) else "",
            revisit if isinstance(revisit, bool) else None,
            csat if isinstance(csat, int) and 1 <= csat <= len(pages.SCALE["ko"]) else None,
        )


_REVISIT = {"yes": True, "no": False, "": None}


def _rating(given: str | None) -> int | str | None:
    """A form's rating as a number when it is one in ASCII digits ("²" is a digit to
    `str.isdigit` but not to `int`); anything else as sent, for validation to refuse."""
    if given and len(given) <= _MAX_RATING_DIGITS and given.isascii() and given.isdigit():
        return int(given)
    return given


@router.post("/f/{token}", responses={400: {}, 404: {}, 410: {}, 422: {}})
async def follow_up_answer(
    token: str, request: Request, database: DatabaseDep, links: FollowUpLinksDep
) -> Response:
    submitted = await _read_answer(request)
    if submitted.answer is None:
        if submitted.as_form:
            return await _form_again(token, submitted, database=database, links=links)
        raise Invalid(f"{len(submitted.errors)} field(s) are invalid.", errors=submitted.errors)
    try:
        async with database.transaction() as session:
            follow = await answer_follow_up(
                session,
                token=token,
                answer=submitted.answer,
                links=links,
                page_language=submitted.language if submitted.as_form else None,
            )
    except DomainError as closed:
        if submitted.as_form:
            page = pages.follow_up_closed(
                _closed_reason(closed), submitted.language, comment=submitted.answer.comment or ""
            )
            return HTMLResponse(page, status_code=closed.status)
        raise
    if submitted.as_form:
        return HTMLResponse(
            pages.follow_up_thanks(
                submitted.language,
                satisfied=bool(follow.satisfied),
                reopened=follow.reopened_feedback_id is not None,
                revisit=submitted.answer.revisit_intent,
            )
        )
    body = {
        "feedback_id": follow.feedback_id,
        "satisfied": follow.satisfied,
        "reopened_feedback_id": follow.reopened_feedback_id,
    }
    return Response(orjson.dumps(body), media_type="application/json")


_FORM_ERRORS = (
    ("body.csat", "invalid"),
    ("body.comment", "invalid_comment"),
    ("body.revisit_intent", "invalid_revisit"),
)


async def _form_again(
    token: str, submitted: _Submitted, *, database: Database, links: FollowUpLinks
) -> HTMLResponse:
    """The refused form drawn again as the customer left it, about their case (it came back as a
    case of "기타" at "매장", the comment gone)."""
    async with database.session() as session:
        try:
            _, row = await get_follow_up(session, token=token, secret=links.secret)
        except DomainError as closed:
            page = pages.follow_up_closed(
                _closed_reason(closed), submitted.language, comment=submitted.comment
            )
            return HTMLResponse(page, status_code=closed.status)
        names = await store_names(session)
    # The first refused field's own words: a too-long comment was told "choose 1 to 5".
    fields = [e.field for e in submitted.errors]
    wrong = next((key for field, key in _FORM_ERRORS if field in fields), "invalid")
    page = pages.follow_up_form(
        token=token,
        language=submitted.language,
        store_name=names.get(row.store_id, ""),
        error=pages.TEXT[submitted.language][wrong],
        comment=submitted.comment,
        revisit=submitted.revisit,
        csat=submitted.csat,
    )
    return HTMLResponse(page, status_code=422)
