"""voc_platform.records: a record's own fields as an answer or a value, named once."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from voc_platform.records import copy_fields, fields_of


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    label: str = ""


class PointOut(BaseModel):
    x: int
    y: int


def test_fields_of_lists_the_named_attributes_in_order() -> None:
    assert list(fields_of(Point(1, 2, "a"), ("y", "x"))) == ["y", "x"]


def test_copy_fields_reads_a_dataclass_fields_from_the_source() -> None:
    row = SimpleNamespace(x=1, y=2, label="a", other="ignored")
    assert copy_fields(Point, row) == Point(1, 2, "a")


def test_given_values_win_and_may_supply_what_the_source_lacks() -> None:
    row = SimpleNamespace(x=1, y=2)
    assert copy_fields(Point, row, label="given", y=5) == Point(1, 5, "given")


def test_copy_fields_builds_a_pydantic_model() -> None:
    assert copy_fields(PointOut, Point(3, 4)) == PointOut(x=3, y=4)


def test_a_source_prefix_names_the_source_attributes() -> None:
    settings = SimpleNamespace(point_x=1, point_y=2, x=9)
    assert copy_fields(Point, settings, source_prefix="point_", label="l") == Point(1, 2, "l")


def test_a_missing_attribute_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(AttributeError):
        copy_fields(Point, SimpleNamespace(x=1))
