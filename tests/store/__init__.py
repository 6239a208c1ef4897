"""Tests of datatrust.store (a package, so module names may repeat in other folders)."""
