"""The declarative policies and the enforcement point that applies them.

Every read of agency data passes through one decision function here, which denies unless a
policy permits the requester's purpose, the types and fields touched, and the form of the
output. The policies are data (Rego for data-use decisions, Polar for platform roles) and
the engines that evaluate them are adapters behind one interface, so a node can run
embedded or against an external OPA and decide the same way.
"""

from datatrust.policies._disclosure import Cell, ProtectedCell, SdcPolicy, protect_cells
from datatrust.policies._enforcement import (
    DATAUSE_POLICY_DIR,
    AccessRequest,
    Permit,
    PolicyRuntime,
    PolicySnapshot,
    Requester,
    describe_fields,
    gateway_view,
    require_permit,
    shipped_policy,
)
from datatrust.policies._engines import Decision, Obligations
from datatrust.policies._platform import (
    AccessLogOf,
    AgencyDocuments,
    AgencyResource,
    ConsentRecordOf,
    DataQuery,
    DraftApproval,
    NodeIngest,
    OptOutList,
    PlatformActor,
    PlatformAuthorizer,
    platform_policy_path,
    query_check,
)

__all__ = [
    "DATAUSE_POLICY_DIR",
    "AccessLogOf",
    "AccessRequest",
    "AgencyDocuments",
    "AgencyResource",
    "Cell",
    "ConsentRecordOf",
    "DataQuery",
    "Decision",
    "DraftApproval",
    "NodeIngest",
    "Obligations",
    "OptOutList",
    "Permit",
    "PlatformActor",
    "PlatformAuthorizer",
    "PolicyRuntime",
    "PolicySnapshot",
    "ProtectedCell",
    "Requester",
    "SdcPolicy",
    "describe_fields",
    "gateway_view",
    "platform_policy_path",
    "protect_cells",
    "query_check",
    "require_permit",
    "shipped_policy",
]
