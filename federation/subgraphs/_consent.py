"""Consent at the node that controls the data: a GraphQL API, authorised by Polar.

A citizen gives or withdraws their own consent (their access token names them, as the
trust pseudonym in its ``person`` claim); a DPO or consent administrator of the node's
agency records or revokes consent on a person's behalf (``pseudonym`` argument). Polar
(``policies/platform/platform.polar``) decides who may do which; the change is committed
before the mutation answers, so the very next query at this node applies it, and the
endpoint audits the action like any other request.

It is served at the node's ``/consent`` (not in the federated subgraph): consent belongs to
one controller, so the same mutation on two subgraphs would be a composition conflict, and
a router must never pick which agency's record to change.
"""

from __future__ import annotations

import functools
from datetime import datetime

import strawberry

from datatrust.errors import AuthenticationFailed, QueryError
from datatrust.federation.subgraphs._base import NodeContext
from datatrust.policies import Requester
from datatrust.policies._platform import ConsentRecordOf, PlatformAuthorizer
from datatrust.trust import (
    ConsentRecord,
    ConsentStatusChange,
    consent_history,
    current_consents,
    give_consent,
    withdraw_consent,
)

__all__ = [
    "ConsentChangeView",
    "ConsentMutation",
    "ConsentQuery",
    "ConsentRecordView",
    "consent_schema",
]


@functools.cache
def _authorizer() -> PlatformAuthorizer:
    return PlatformAuthorizer()


@strawberry.type(name="ConsentRecord", description="A consent record (ISO/IEC TS 27560 style).")
class ConsentRecordView:
    record_id: strawberry.ID
    purpose: str
    controller: str
    state: str = strawberry.field(description="DPV state, e.g. ConsentGiven, ConsentWithdrawn.")
    lawful_basis: str
    given_at: datetime
    updated_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentRecordView:
        return cls(
            record_id=strawberry.ID(record.record_id),
            purpose=record.purpose,
            controller=record.controller,
            state=str(getattr(record.state, "value", record.state)),
            lawful_basis=record.lawful_basis,
            given_at=record.given_at,
            updated_at=record.updated_at,
            expires_at=record.expires_at,
        )


@strawberry.type(name="ConsentChange", description="One state a consent record entered, and when.")
class ConsentChangeView:
    record_id: strawberry.ID
    purpose: str
    controller: str
    state: str = strawberry.field(description="DPV state the record entered.")
    actor: str
    at: datetime
    note: str | None

    @classmethod
    def of(cls, change: ConsentStatusChange) -> ConsentChangeView:
        return cls(
            record_id=strawberry.ID(change.record_id),
            purpose=change.purpose,
            controller=change.controller,
            state=str(getattr(change.state, "value", change.state)),
            actor=change.actor,
            at=change.at,
            note=change.note,
        )


def _subject(info: strawberry.Info, pseudonym: str | None) -> tuple[Requester, str, bool]:
    """(who acts, whose consent, whether they act for themselves)."""
    context: NodeContext = info.context
    requester = context.requester
    if requester is None:
        raise AuthenticationFailed("changing consent needs an access token")
    person = requester.person
    if pseudonym is None:
        if person is None:
            raise QueryError(
                "say whose consent this is: 'pseudonym' (staff acting for a person), or sign "
                "in as the person"
            )
        return requester, person, True
    return requester, pseudonym, pseudonym == person


def _authorise(info: strawberry.Info, pseudonym: str | None, own: str, staff: str):
    context: NodeContext = info.context
    requester, subject, by_subject = _subject(info, pseudonym)
    action = own if by_subject else staff
    _authorizer().authorize(requester, action, ConsentRecordOf(subject, context.node_id))
    return requester, subject, by_subject


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Give (citizen) or record (staff) consent for a purpose.")
    def give_consent(
        self,
        info: strawberry.Info,
        purpose: str,
        pseudonym: strawberry.ID | None = None,
        lawful_basis: str = "6(1)(a)",
        expires_at: datetime | None = None,
        notice_version: str | None = None,
    ) -> ConsentRecordView:
        context: NodeContext = info.context
        requester, subject, _ = _authorise(info, pseudonym, "give", "record")
        record = give_consent(
            context.engine,
            pseudonym=subject,
            controller=context.node_id,
            purpose=purpose,
            lawful_basis=lawful_basis,
            source=f"graphql via {requester.client_id or 'unknown client'}",
            actor=requester.label,
            expires_at=expires_at,
            notice_version=notice_version,
            register=context.register,
        )
        return ConsentRecordView.of(record)

    @strawberry.mutation(
        description="Withdraw (citizen) or revoke (staff) a consent; the next query honours it."
    )
    def withdraw_consent(
        self, info: strawberry.Info, purpose: str, pseudonym: strawberry.ID | None = None
    ) -> ConsentRecordView:
        context: NodeContext = info.context
        requester, subject, by_subject = _authorise(info, pseudonym, "withdraw", "revoke")
        record = withdraw_consent(
            context.engine,
            pseudonym=subject,
            controller=context.node_id,
            purpose=purpose,
            actor=requester.label,
            by_subject=by_subject,
            source=f"graphql via {requester.client_id or 'unknown client'}",
            register=context.register,
        )
        return ConsentRecordView.of(record)


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="Consents this node holds for a person (yourself by default).")
    def consents(
        self, info: strawberry.Info, pseudonym: strawberry.ID | None = None
    ) -> list[ConsentRecordView]:
        context: NodeContext = info.context
        _, subject, _ = _authorise(info, pseudonym, "read", "read")
        return [ConsentRecordView.of(r) for r in current_consents(context.engine, subject)]

    @strawberry.field(
        description="Every state the person's records at this node have been in, oldest first."
    )
    def consent_history(
        self, info: strawberry.Info, pseudonym: strawberry.ID | None = None
    ) -> list[ConsentChangeView]:
        context: NodeContext = info.context
        _, subject, _ = _authorise(info, pseudonym, "read", "read")
        return [ConsentChangeView.of(c) for c in consent_history(context.engine, subject)]


consent_schema = strawberry.Schema(query=ConsentQuery, mutation=ConsentMutation)
