"""Driver errors are translated at the store's edge: a unique-key race is a Conflict, any
other failure a StoreError, and neither (nor its traceback) quotes a statement's parameters."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
import sqlalchemy as sa

from firehook import errors
from firehook.store import raw
from firehook.store.schema import projects

SECRET = "s3cr3t-value-that-must-never-be-printed"


def insert_project(conn: sa.Connection, project_id: str, title: str) -> None:
    conn.execute(projects.insert().values(id=project_id, title=title, doc="{}", created_at="t", updated_at="t"))


def printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_unique_race_is_a_conflict_without_parameters(services: Any) -> None:
    with services.database.write() as conn:
        insert_project(conn, "dup", SECRET)
    with pytest.raises(errors.Conflict) as caught:
        with services.database.write() as conn:
            insert_project(conn, "dup", SECRET)
    assert caught.value.status == 409
    assert SECRET not in printed(caught.value)
    with pytest.raises(errors.Conflict) as raw_caught:  # the DB-API path says the same
        with services.database.write() as conn:
            raw.cursor(conn).execute("INSERT INTO projects (id, title, doc, created_at, updated_at) "
                                     "VALUES (?, ?, ?, ?, ?)", ("dup", SECRET, "{}", "t", "t"))
    assert SECRET not in printed(raw_caught.value)


def test_other_driver_errors_are_store_errors_without_parameters(services: Any) -> None:
    with pytest.raises(errors.StoreError) as caught:
        with services.database.write() as conn:
            conn.execute(sa.text("INSERT INTO no_such_table VALUES (:v)"), {"v": SECRET})
    assert SECRET not in printed(caught.value)
    if services.database.is_sqlite:
        return
    # PostgreSQL checks lengths: an id over the column's 64 characters
    with pytest.raises(errors.StoreError) as too_long:
        with services.database.write() as conn:
            insert_project(conn, SECRET * 3, "x")
    assert SECRET not in printed(too_long.value)
