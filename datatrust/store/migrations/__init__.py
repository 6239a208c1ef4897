"""Alembic migrations of the node store (run by ``datatrust.store.migrate``).

This file only makes the folder an installable package; Alembic skips ``__init__.py``.
"""
