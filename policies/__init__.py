"""The declarative policies and the enforcement point that applies them.

Every read of agency data passes through one decision function here, which denies unless a
policy permits the requester's purpose, the types and fields touched, and the form of the
output. The policies are data (Rego for data-use decisions, Polar for platform roles) and
the engines that evaluate them are adapters behind one interface, so a node can run
embedded or against an external OPA and decide the same way.
"""

from datatrust.policies._enforcement import (
    AccessRequest,
    DataUsePolicy,
    Permit,
    Requester,
    decide,
    describe_fields,
    skeleton_policy,
)

__all__ = [
    "AccessRequest",
    "DataUsePolicy",
    "Permit",
    "Requester",
    "decide",
    "describe_fields",
    "skeleton_policy",
]
