"""The purpose register: the purposes the trust's members agreed data may be used for.

The register is a versioned document (``data/purposes.json`` for the demo trust). Every
request names one of its ids in the ``Purpose`` header; a request naming no purpose, or
one the register does not know, is refused before any data is touched. Terms come from the
W3C Data Privacy Vocabulary where it has one; the trust defines its own under
``dpv:PublicBenefit`` where it has none (safeguarding, commissioning).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from datatrust.errors import PurposeMissing, PurposeUnknown, SettingsError

__all__ = ["Purpose", "PurposeRegister", "demo_purpose_register"]

_PURPOSE_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Purpose:
    """One registered purpose. Ids are lowercase kebab-case, printable ASCII."""

    id: str
    title: str
    dpv: str | None = None
    dpv_parent: str | None = None
    national_data_opt_out_applies: bool = False

    def __post_init__(self) -> None:
        if not _PURPOSE_ID.match(self.id):
            raise SettingsError(
                f"purpose id {self.id!r} must be lowercase letters, digits and '-', "
                "starting with a letter (e.g. 'service-planning')"
            )


@dataclass(frozen=True, slots=True)
class PurposeRegister:
    version: str
    purposes: tuple[Purpose, ...]

    @classmethod
    def from_document(cls, document: dict[str, Any], *, source: str) -> PurposeRegister:
        try:
            purposes = tuple(Purpose(**entry) for entry in document["purposes"])
            version = str(document["version"])
        except (KeyError, TypeError) as error:
            raise SettingsError(f"purpose register {source} is malformed: {error}") from error
        ids = [p.id for p in purposes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SettingsError(f"purpose register {source} lists {duplicates[0]!r} twice")
        return cls(version=version, purposes=purposes)

    @classmethod
    def from_path(cls, path: Path) -> PurposeRegister:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")), source=str(path))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.purposes)

    def resolve(self, header_value: str | None) -> Purpose:
        """The purpose a request declared, or PurposeMissing / PurposeUnknown saying why not."""
        if header_value is None or not header_value.strip():
            raise PurposeMissing(
                "no purpose declared: send the HTTP header 'Purpose: <purpose id>', "
                f"one of: {', '.join(self.ids)}",
                known_purposes=list(self.ids),
            )
        wanted = header_value.strip()
        for purpose in self.purposes:
            if purpose.id == wanted:
                return purpose
        raise PurposeUnknown(
            f"unknown purpose {wanted[:64]!r}: the trust's purpose register "
            f"(version {self.version}) lists {', '.join(self.ids)}",
            purpose=wanted[:64],
            known_purposes=list(self.ids),
        )


def demo_purpose_register() -> PurposeRegister:
    """The purpose register shipped with the demo trust."""
    text = resources.files("datatrust.trust").joinpath("data/purposes.json").read_text("utf-8")
    return PurposeRegister.from_document(json.loads(text), source="datatrust/trust/purposes.json")
