"""How the members of a trust find and reach each other.

The node directory (which agency runs which node at which address), the HTTP transport the
gateway uses to call nodes, and the health checks, timeouts and retries around it live
here. Later this package also owns the signed trust directory and mutual TLS; other
packages reach a peer only through the transport seam defined here.
"""

__all__: list[str] = []
