"""The trust's own domain: what the member agencies agreed and what happened under it.

The purpose register, consent records, data-sharing agreements and the audit ledger live
here, together with (as they land) the identity server, the citizen portal and the DPO
console. Everything here is about the rules and the accounting of data use, never about an
agency's operational data itself.
"""

from datatrust.trust._audit import (
    AuditEntry,
    append_audit_entry,
    read_audit_entries,
    verify_audit_chain,
)
from datatrust.trust._keys import load_or_create_key
from datatrust.trust._purposes import Purpose, PurposeRegister, demo_purpose_register

__all__ = [
    "AuditEntry",
    "Purpose",
    "PurposeRegister",
    "append_audit_entry",
    "demo_purpose_register",
    "load_or_create_key",
    "read_audit_entries",
    "verify_audit_chain",
]
