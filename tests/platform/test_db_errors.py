"""A failed statement's error text carries no parameter values: customer texts, phones and
e-mails never reach a log line, a trace or a dead-letter header through it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import DatabaseFactory
from voc_platform.db import Database


async def test_statement_errors_hide_their_parameters(databases: DatabaseFactory) -> None:
    database = Database(databases.url("db_errors"))
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE people (email VARCHAR(254) PRIMARY KEY, phone TEXT)"))
        row = {"email": "kim.minji@gmail.com", "phone": "010-1234-5678"}
        insert = text("INSERT INTO people (email, phone) VALUES (:email, :phone)")
        async with database.transaction() as session:
            await session.execute(insert, row)
        with pytest.raises(IntegrityError) as failed:
            async with database.transaction() as session:
                await session.execute(insert, {**row, "phone": "010-9999-8888"})
    finally:
        await database.dispose()
    message = str(failed.value)
    assert "010-9999-8888" not in message and "kim.minji" not in message, message
    assert "hidden" in message
