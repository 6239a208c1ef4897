"""The trust documents a DPO edits: the purpose register and the data-sharing agreements.

They are data, not code: JSON validated against a schema and checked for what a schema cannot
say (unknown purposes, impossible dates, agreements that contradict each other), then handed
to the generic Rego as ``data.documents``. Refusing a bad document here is what keeps a node
from ever running a policy that means something other than what its DPO wrote.
"""

from datatrust.policies.documents._rego_data import rego_data
from datatrust.policies.documents._validate import (
    DocumentProblem,
    demo_agreements,
    demo_register,
    validate_documents,
)

__all__ = [
    "DocumentProblem",
    "demo_agreements",
    "demo_register",
    "rego_data",
    "validate_documents",
]
