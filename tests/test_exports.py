"""Each package's ``__all__`` lists every public name it defines, and nothing else."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "datatrust",
    "datatrust.adapters",
    "datatrust.demo",
    "datatrust.errors",
    "datatrust.federation",
    "datatrust.federation.gateway",
    "datatrust.federation.subgraphs",
    "datatrust.ingest",
    "datatrust.network",
    "datatrust.policies",
    "datatrust.policies.lifecycle",
    "datatrust.settings",
    "datatrust.store",
    "datatrust.trust",
    "datatrust.web",
    "datatrust.web.console",
    "datatrust.web.explorer",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_only_what_exists(name):
    """(Sorting is ruff's RUF022, run with the tests in CI.)"""
    module = importlib.import_module(name)
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.__all__ lists missing {item}"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_a_package_imports_from_its_modules_is_exported(name):
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and getattr(value, "__module__", "").startswith(name + "._")
    }
    assert public <= set(module.__all__)


def test_every_package_folder_is_installed():
    """pyproject lists packages by hand (package-dir mapping); none may be forgotten."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    declared = set(config["packages"])
    found = set()
    for package, folder in mapping.items():
        for init in (root / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(root / folder).parts
            found.add(".".join((package, *relative)))
    assert found == declared
