"""How the members of a trust find and trust each other.

The signed trust directory (which agency runs which node at which address, with which
certificate and token issuers), the trust's own CA and per-part certificates, and mutual
TLS between the gateway and nodes live here. The HTTP transport the gateway uses to call
nodes, with its health checks, timeouts and retries, joins them here; other packages reach
a peer only through this package.
"""

from datatrust.network._directory import (
    DirectoryAgency,
    DirectoryGateway,
    DirectoryIssuer,
    DirectoryMember,
    DirectoryPeer,
    DirectoryTool,
    TrustDirectory,
)
from datatrust.network._errors import DirectoryError, PeerNotListed, TlsMaterialError
from datatrust.network._loader import DirectoryLoad, DirectoryWatcher, load_directory
from datatrust.network._pki import TlsFiles, TrustPki, certificate_fingerprint, init_trust_pki
from datatrust.network._signing import (
    DIRECTORY_TYPE,
    load_operator_public_key,
    load_or_create_operator_key,
    operator_public_key_path,
    sign_directory,
    verify_directory,
)
from datatrust.network._tls import (
    PeerCertificateProtocol,
    RequireDirectoryPeer,
    client_ssl_context,
    mtls_uvicorn_config,
    server_ssl_context,
)

__all__ = [
    "DIRECTORY_TYPE",
    "DirectoryAgency",
    "DirectoryError",
    "DirectoryGateway",
    "DirectoryIssuer",
    "DirectoryLoad",
    "DirectoryMember",
    "DirectoryPeer",
    "DirectoryTool",
    "DirectoryWatcher",
    "PeerCertificateProtocol",
    "PeerNotListed",
    "RequireDirectoryPeer",
    "TlsFiles",
    "TlsMaterialError",
    "TrustDirectory",
    "TrustPki",
    "certificate_fingerprint",
    "client_ssl_context",
    "init_trust_pki",
    "load_directory",
    "load_operator_public_key",
    "load_or_create_operator_key",
    "mtls_uvicorn_config",
    "operator_public_key_path",
    "server_ssl_context",
    "sign_directory",
    "verify_directory",
]
