"""The trust's own domain: what the member agencies agreed and what happened under it.

The purpose register, consent records, data-sharing agreements and the audit ledger live
here, together with (as they land) the identity server, the citizen portal and the DPO
console. Everything here is about the rules and the accounting of data use, never about an
agency's operational data itself.
"""

__all__: list[str] = []
