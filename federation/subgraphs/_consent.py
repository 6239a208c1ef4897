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
from strawberry.tools import merge_types

from datatrust.errors import AccessDenied, AuthenticationFailed, QueryError
from datatrust.federation.subgraphs._base import NodeContext
from datatrust.federation.subgraphs._citizen import DataUse, data_uses, record_counts
from datatrust.policies import Requester
from datatrust.policies._platform import (
    AccessLogOf,
    CitizenOptOutOf,
    ConsentRecordOf,
    PersonRecordsAt,
    PlatformAuthorizer,
)
from datatrust.trust import (
    CitizenOptOutStatus,
    ConsentRecord,
    ConsentStatusChange,
    citizen_opt_out,
    consent_history,
    current_consents,
    give_consent,
    register_citizen_opt_out,
    remove_citizen_opt_out,
    withdraw_consent,
)

__all__ = [
    "ConsentChangeView",
    "ConsentMutation",
    "ConsentQuery",
    "ConsentRecordView",
    "DataUseView",
    "OptOutChangeView",
    "OptOutMutation",
    "OptOutQuery",
    "OptOutView",
    "RecordCountView",
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


@strawberry.type(
    name="DataUse",
    description="One permitted request to this node that returned the person's records.",
)
class DataUseView:
    seq: int = strawberry.field(description="The entry's place in this node's audit ledger.")
    at: datetime = strawberry.field(description="When the node recorded it (UTC).")
    node: str = strawberry.field(description="The node whose ledger holds it.")
    agency: str | None = strawberry.field(description="The agency that asked (its token's).")
    client_id: str | None = strawberry.field(description="The software it asked through.")
    purpose: str | None = strawberry.field(description="Purpose id from the register.")
    operation: str
    fields: list[str] = strawberry.field(description="Type.field names the request read.")
    agreement: str | None = strawberry.field(description="The agreement that permitted it.")
    policy_version: str = strawberry.field(description="The policy version that decided.")
    aggregate: bool | None
    request_id: str | None

    @classmethod
    def of(cls, use: DataUse) -> DataUseView:
        return cls(
            seq=use.seq,
            at=use.at,
            node=use.node,
            agency=use.agency,
            client_id=use.client_id,
            purpose=use.purpose,
            operation=use.operation,
            fields=list(use.fields),
            agreement=use.agreement,
            policy_version=use.policy_version,
            aggregate=use.aggregate,
            request_id=use.request_id,
        )


@strawberry.type(name="RecordCount", description="How many records of one kind the node holds.")
class RecordCountView:
    kind: str = strawberry.field(description="person, encounter or care-episode.")
    count: int


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

    @strawberry.field(
        description="Who used the person's records at this node (yourself by default; a DPO "
        "of this agency may name a pseudonym), newest first, from the audit ledger."
    )
    def data_uses(
        self,
        info: strawberry.Info,
        since: datetime | None = None,
        before: datetime | None = None,
        first: int = 1000,
        pseudonym: strawberry.ID | None = None,
    ) -> list[DataUseView]:
        context: NodeContext = info.context
        requester, subject, _ = _subject(info, pseudonym)
        _authorizer().authorize(requester, "read", AccessLogOf(subject, context.node_id))
        uses = data_uses(context.engine, subject, since=since, before=before, limit=first)
        return [DataUseView.of(use) for use in uses]

    @strawberry.field(description="How many records this node holds about you, per kind.")
    def my_records(self, info: strawberry.Info) -> list[RecordCountView]:
        context: NodeContext = info.context
        requester, subject, _ = _subject(info, None)
        _authorizer().authorize(requester, "count", PersonRecordsAt(subject, context.node_id))
        counts = record_counts(context.engine, subject)
        return [RecordCountView(kind=kind, count=count) for kind, count in counts.items()]


# --- a citizen's own research-and-planning opt-out: registerOptOut / removeOptOut -------
#
# These take no argument naming a person, so no caller can even send another person's
# id: the node takes the person from the token's ``person`` claim, and Polar
# (CitizenOptOutOf) allows only that person. The opt-out is kept in its own table beside
# the national list (trust/_opt_outs.py), which the ``national_data_opt_out`` row filter
# applies with it on the next query.


@strawberry.type(name="OptOutChange", description="One registration or removal of your opt-out.")
class OptOutChangeView:
    action: str = strawberry.field(description="OptOutRegistered or OptOutRemoved.")
    actor: str
    at: datetime
    source: str


@strawberry.type(
    name="OptOut",
    description="Your own research-and-planning opt-out at this node, and its history.",
)
class OptOutView:
    opted_out: bool = strawberry.field(description="Whether your opt-out is in force here.")
    since: datetime | None = strawberry.field(description="When you registered it (UTC).")
    changed: bool = strawberry.field(
        description="Whether this request changed it (false when it was already so)."
    )
    history: list[OptOutChangeView] = strawberry.field(description="Oldest first.")

    @classmethod
    def of(cls, status: CitizenOptOutStatus) -> OptOutView:
        return cls(
            opted_out=status.is_opted_out,
            since=status.since,
            changed=status.is_changed,
            history=[
                OptOutChangeView(action=c.action, actor=c.actor, at=c.at, source=c.source)
                for c in status.history
            ],
        )


def _own_opt_out(info: strawberry.Info, action: str) -> tuple[Requester, str]:
    """(who acts, their own pseudonym), once Polar allows ``action`` on their own opt-out."""
    context: NodeContext = info.context
    requester = context.requester
    if requester is None:
        raise AuthenticationFailed("an opt-out needs the person's own access token")
    if not requester.person:
        raise AccessDenied(
            f"access denied: {requester.label} is no citizen; only the person themself may "
            f"{action} their opt-out, signed in as themself (no one acts for them here)",
            action=action,
            resource="CitizenOptOutOf",
        )
    subject = requester.person
    _authorizer().authorize(requester, action, CitizenOptOutOf(subject, context.node_id))
    return requester, subject


@strawberry.type
class OptOutQuery:
    @strawberry.field(description="Your own research-and-planning opt-out at this node.")
    def opt_out(self, info: strawberry.Info) -> OptOutView:
        context: NodeContext = info.context
        _, subject = _own_opt_out(info, "read")
        return OptOutView.of(citizen_opt_out(context.engine, subject))


@strawberry.type
class OptOutMutation:
    @strawberry.mutation(
        description="Opt out of your records being used for research and planning here; the "
        "next query honours it. Already opted out: answered unchanged."
    )
    def register_opt_out(self, info: strawberry.Info) -> OptOutView:
        context: NodeContext = info.context
        requester, subject = _own_opt_out(info, "register")
        status = register_citizen_opt_out(
            context.engine,
            subject,
            actor=requester.label,
            source=f"graphql via {requester.client_id or 'unknown client'}",
        )
        return OptOutView.of(status)

    @strawberry.mutation(
        description="Remove the opt-out you registered here (not a national one held by the "
        "NHS); the next query honours it. Not opted out: answered unchanged."
    )
    def remove_opt_out(self, info: strawberry.Info) -> OptOutView:
        context: NodeContext = info.context
        requester, subject = _own_opt_out(info, "remove")
        status = remove_citizen_opt_out(
            context.engine,
            subject,
            actor=requester.label,
            source=f"graphql via {requester.client_id or 'unknown client'}",
        )
        return OptOutView.of(status)


# --- end of the opt-out block ----------------------------------------------------------


consent_schema = strawberry.Schema(
    query=merge_types("ConsentQuery", (ConsentQuery, OptOutQuery)),
    mutation=merge_types("ConsentMutation", (ConsentMutation, OptOutMutation)),
)
