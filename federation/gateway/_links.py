"""Check a subgraph's ``@link``s: Federation 2.0 to 2.7, and only directives that exist there.

The trust pins Federation 2.7 (what Apollo's and Hive's composition and Apollo's subgraph
checks all accept). A Federation 1 subgraph (no ``@link``) means something else by its
types, a newer version may use directives this gateway does not plan with, and a renamed
or unknown import would be silently ignored by the rules in ``_compose``; each is refused
by name. Each directive's first version is declared once, as data, like strawberry's
``federation/versions.py``.
"""

from __future__ import annotations

import re

from graphql import (
    DocumentNode,
    ListValueNode,
    ObjectValueNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
)

from ._errors import CompositionError

__all__ = ["SUPPORTED_VERSIONS", "check_links"]

SUPPORTED_VERSIONS = tuple(f"2.{minor}" for minor in range(8))
_FEDERATION = re.compile(r"^https://specs\.apollo\.dev/federation/v(\d+\.\d+)$")
_LINK = re.compile(r"^https://specs\.apollo\.dev/link/v1\.\d+$")
FIRST_VERSION = {
    "@key": "2.0",
    "@shareable": "2.0",
    "@external": "2.0",
    "@requires": "2.0",
    "@provides": "2.0",
    "@override": "2.0",
    "@inaccessible": "2.0",
    "@tag": "2.0",
    "@extends": "2.0",
    "FieldSet": "2.0",
    "@composeDirective": "2.1",
    "@interfaceObject": "2.3",
    "@authenticated": "2.5",
    "@requiresScopes": "2.5",
    "Scope": "2.5",
    "@policy": "2.6",
    "Policy": "2.6",
}
"""What a federation ``@link`` may import, and the version that introduced it."""


def check_links(subgraph: str, document: DocumentNode) -> str:
    """The Federation version ``subgraph`` links, or a CompositionError naming the problem."""
    versions = []
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "link":
                continue
            arguments = {a.name.value: a.value for a in directive.arguments or ()}
            url = arguments.get("url")
            text = url.value if isinstance(url, StringValueNode) else ""
            found = _FEDERATION.match(text)
            if found:
                versions.append((found[1], arguments.get("import")))
            elif not _LINK.match(text):
                raise CompositionError(
                    f"subgraph '{subgraph}' links {text or 'a @link without a url'}, which this "
                    "gateway does not support; link only "
                    '"https://specs.apollo.dev/federation/v2.7"',
                    subgraph=subgraph,
                )
    if not versions:
        raise CompositionError(
            f"subgraph '{subgraph}' does not link Apollo Federation 2 (a Federation 1 subgraph?); "
            'add extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
            'import: ["@key"])',
            subgraph=subgraph,
        )
    if len(versions) > 1:
        raise CompositionError(
            f"subgraph '{subgraph}' links Federation {len(versions)} times "
            f"(v{', v'.join(v for v, _ in versions)}); link it once",
            subgraph=subgraph,
        )
    ((version, imports),) = versions
    if version not in SUPPORTED_VERSIONS:
        raise CompositionError(
            f"subgraph '{subgraph}' links Federation v{version}; this gateway composes "
            f"v{SUPPORTED_VERSIONS[0]} to v{SUPPORTED_VERSIONS[-1]}: link "
            '"https://specs.apollo.dev/federation/v2.7"',
            subgraph=subgraph,
        )
    _check_imports(subgraph, version, imports)
    return version


def _check_imports(subgraph: str, version: str, imports: object) -> None:
    if imports is None:
        return
    values = imports.values if isinstance(imports, ListValueNode) else (imports,)
    for value in values:
        if isinstance(value, ObjectValueNode):
            fields = {f.name.value: getattr(f.value, "value", None) for f in value.fields}
            raise CompositionError(
                f"subgraph '{subgraph}' imports {fields.get('name')} renamed as "
                f"{fields.get('as')}; this gateway reads federation directives by their own "
                "names, so import them without 'as'",
                subgraph=subgraph,
            )
        name = getattr(value, "value", None)
        first = FIRST_VERSION.get(str(name))
        if first is None:
            raise CompositionError(
                f"subgraph '{subgraph}' imports {name!r}, which is not in Federation "
                f"v{version} as this gateway knows it; import only: {', '.join(FIRST_VERSION)}",
                subgraph=subgraph,
            )
        if _number(first) > _number(version):
            raise CompositionError(
                f"subgraph '{subgraph}' imports {name}, which needs Federation v{first}, but "
                f"links v{version}; link v{first} or later",
                subgraph=subgraph,
            )


def _number(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
