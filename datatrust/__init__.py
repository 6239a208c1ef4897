"""datatrust: a federated data trust for UK public-service agencies.

This root package holds what ties the card folders together into one product: the
``datatrust`` command line, the typed settings of each process, the shared error tree,
the node store (canonical records and their migrations) and the node application that
serves them. The card folders are installed beneath it as ``datatrust.adapters``,
``datatrust.ingest``, ``datatrust.trust``, ``datatrust.policies``,
``datatrust.federation`` and ``datatrust.network``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
