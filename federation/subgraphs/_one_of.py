"""``column`` is one of a batch of keys, as one bound parameter however long the batch.

An ``_entities`` call can carry thousands of representations, and the DataLoader turns
them into one query. A plain ``IN (?, ?, ...)`` binds one parameter per key: SQLite builds
stop at 999 or 32,766 of them (by compile option) and PostgreSQL's protocol at 65,535, and
every batch size is a new statement text. Here the whole batch is one parameter: a JSON
array read with ``json_each`` on SQLite, a ``text[]`` compared with ``= ANY`` on PostgreSQL.
Both still seek the column's index for each key (``bench/entities.py`` measures it against
the plain IN list), and the statement text stays the same for every batch size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

__all__ = ["one_of"]


class _Keys(TypeDecorator[list[str]]):
    """A list of string keys: a ``text[]`` on PostgreSQL, a JSON array text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        keys = [str(key) for key in value]
        return keys if dialect.name == "postgresql" else json.dumps(keys)


class _OneOf(ColumnElement[bool]):
    """``column`` equals one of the keys bound in ``keys`` (see the module docstring)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison already: no "= 1" where booleans are ints
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("keys", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, values: Iterable[str]) -> None:
        self.column = column
        self.keys = bindparam(None, list(values), type_=_Keys(), unique=True)


@compiles(_OneOf)
def _json_each(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    keys = compiler.process(element.keys, **kw)  # a bound parameter's placeholder, never a value
    return f"{column} IN (SELECT value FROM json_each({keys}))"  # noqa: S608


@compiles(_OneOf, "postgresql")
def _any_array(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY({compiler.process(element.keys, **kw)})"


def one_of(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """A WHERE clause: ``column`` is one of ``values`` (any number, one parameter)."""
    return _OneOf(column, values)
