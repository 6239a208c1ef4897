"""Multi-host tests: the trust's parts in separate network namespaces (needs root)."""
