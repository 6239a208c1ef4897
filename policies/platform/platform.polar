# Platform authorisation: who may do what in the platform (DESIGN.md section 3).
#
# This file answers "may this actor do this to this thing"; whether data may flow for a
# purpose is the data-use policy's question (Rego, policies/datause). Everything not
# allowed here is refused: there are no deny rules, only the allow rules below.
#
# The classes are registered by datatrust.policies._platform:
#   PlatformActor   subject, agency, roles, client_id, purposes, person (the citizen's pseudonym)
#   AgencyDocuments agency                 an agency's agreements and purpose entries
#   DraftApproval   agency, author         approving a draft of those documents
#   ConsentRecordOf pseudonym, controller  one person's consent records held by one agency
#   AccessLogOf     pseudonym, agency      who used one person's data, in one agency's ledger
#   PersonRecordsAt pseudonym, agency      how many records one agency's node holds on a person
#   NodeIngest      agency                 loading data into an agency's node
#   DataQuery       agency, purpose        querying the trust for an agency and a purpose
#   OptOutList      agency                 the national data opt-out list cached at a node
#   CitizenOptOutOf pseudonym, agency      one person's own research-and-planning opt-out at a node

# --- who acts for which agency ---------------------------------------------------------

# A partner system acts for exactly one agency: the one its OAuth client is registered to,
# which is the agency its token names. Without a client it is no partner system at all.
acts_for(actor: PlatformActor, agency: String) if
    "partner-system" in actor.roles and
    actor.client_id != nil and
    actor.agency = agency;

# A member of staff acts for the agency their token names.
acts_for(actor: PlatformActor, agency: String) if
    not "partner-system" in actor.roles and
    actor.agency = agency;

# Administrative roles belong to people: a partner system's token never carries them,
# whatever else it lists.
is_staff(actor: PlatformActor, role: String, agency: String) if
    not "partner-system" in actor.roles and
    role in actor.roles and
    acts_for(actor, agency);

# The citizen a record is about, signed in as themself.
is_the_person(actor: PlatformActor, pseudonym: String) if
    actor.person != nil and
    actor.person = pseudonym;

# --- a DPO administers only their own agency's documents -------------------------------

allow(actor: PlatformActor, action: String, documents: AgencyDocuments) if
    action in ["read", "edit", "publish"] and
    is_staff(actor, "dpo", documents.agency);

# Four eyes: a draft is approved by a second DPO of the same agency, never by its author.
allow(actor: PlatformActor, "approve", draft: DraftApproval) if
    is_staff(actor, "dpo", draft.agency) and
    actor.subject != draft.author;

# --- a citizen sees and changes only their own consents --------------------------------

allow(actor: PlatformActor, action: String, record: ConsentRecordOf) if
    action in ["read", "give", "withdraw"] and
    is_the_person(actor, record.pseudonym);

# The controller's DPO or consent administrator records or revokes on a person's behalf.
allow(actor: PlatformActor, action: String, record: ConsentRecordOf) if
    action in ["read", "record", "revoke"] and
    (is_staff(actor, "dpo", record.controller) or
     is_staff(actor, "consent-admin", record.controller));

# --- a citizen registers or removes only their own research-and-planning opt-out ------

# No one acts for the person here, not even a DPO: the opt-out is the person's own choice
# (the national one is registered with the NHS, and reaches nodes as the national list).
allow(actor: PlatformActor, action: String, opt_out: CitizenOptOutOf) if
    action in ["read", "register", "remove"] and
    is_the_person(actor, opt_out.pseudonym);

# --- who used a person's data ----------------------------------------------------------

allow(actor: PlatformActor, "read", log: AccessLogOf) if
    is_the_person(actor, log.pseudonym);

allow(actor: PlatformActor, "read", log: AccessLogOf) if
    is_staff(actor, "dpo", log.agency);

# --- what a node holds about a person: the person alone may count it ----------------------

allow(actor: PlatformActor, "count", records: PersonRecordsAt) if
    is_the_person(actor, records.pseudonym);

# --- node operators manage their own node's ingest -------------------------------------

allow(actor: PlatformActor, action: String, ingest: NodeIngest) if
    action in ["read", "ingest", "replay"] and
    is_staff(actor, "node-operator", ingest.agency);

allow(actor: PlatformActor, action: String, opt_outs: OptOutList) if
    action in ["read", "load"] and
    (is_staff(actor, "node-operator", opt_outs.agency) or
     is_staff(actor, "dpo", opt_outs.agency));

# --- analysts and partner systems query for their agency's allowed purposes -----------

allow(actor: PlatformActor, "query", query: DataQuery) if
    is_querier(actor) and
    acts_for(actor, query.agency) and
    actor.purposes != nil and
    query.purpose in actor.purposes;

is_querier(actor: PlatformActor) if "analyst" in actor.roles;
is_querier(actor: PlatformActor) if "researcher" in actor.roles;
is_querier(actor: PlatformActor) if "partner-system" in actor.roles;
is_querier(actor: PlatformActor) if "clinician" in actor.roles;
is_querier(actor: PlatformActor) if "social-worker" in actor.roles;
is_querier(actor: PlatformActor) if "safeguarding-lead" in actor.roles;
