"""The trust's own domain: what the member agencies agreed and what happened under it.

The purpose register, consent records, data-sharing agreements and the audit ledger live
here, together with (as they land) the identity server, the citizen portal and the DPO
console. Everything here is about the rules and the accounting of data use, never about an
agency's operational data itself.
"""

from datatrust.trust._audit import (
    AuditEntry,
    append_audit_entry,
    audit_head_path,
    read_audit_entries,
    read_audit_head,
    verify_audit_chain,
)
from datatrust.trust._consent import (
    CONSENT_SCHEMA_VERSION,
    ConsentGrant,
    ConsentRecord,
    ConsentStatusChange,
    consent_history,
    current_consents,
    give_consent,
    give_consents,
    withdraw_consent,
)
from datatrust.trust._consent_states import ConsentChange, ConsentState
from datatrust.trust._keys import (
    OVERLAP_KEY_FILE,
    load_or_create_key,
    overlap_key_path,
    person_pseudonym,
)
from datatrust.trust._opt_outs import (
    CitizenOptOutChange,
    CitizenOptOutStatus,
    OptOutLoad,
    citizen_opt_out,
    load_opt_out_list,
    not_opted_out_by_citizen,
    opt_out_list_date,
    register_citizen_opt_out,
    remove_citizen_opt_out,
)
from datatrust.trust._purposes import Purpose, PurposeRegister, demo_purpose_register
from datatrust.trust._row_filters import has_current_consent, not_opted_out

__all__ = [
    "CONSENT_SCHEMA_VERSION",
    "OVERLAP_KEY_FILE",
    "AuditEntry",
    "CitizenOptOutChange",
    "CitizenOptOutStatus",
    "ConsentChange",
    "ConsentGrant",
    "ConsentRecord",
    "ConsentState",
    "ConsentStatusChange",
    "OptOutLoad",
    "Purpose",
    "PurposeRegister",
    "append_audit_entry",
    "audit_head_path",
    "citizen_opt_out",
    "consent_history",
    "current_consents",
    "demo_purpose_register",
    "give_consent",
    "give_consents",
    "has_current_consent",
    "load_opt_out_list",
    "load_or_create_key",
    "not_opted_out",
    "not_opted_out_by_citizen",
    "opt_out_list_date",
    "overlap_key_path",
    "person_pseudonym",
    "read_audit_entries",
    "read_audit_head",
    "register_citizen_opt_out",
    "remove_citizen_opt_out",
    "verify_audit_chain",
    "withdraw_consent",
]
