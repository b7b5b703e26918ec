"""Every package states its public names, and other packages import only those.

A package's `__init__` is its face: `__all__` lists what it offers, and a module of another
package (the composition root at the top level included) imports from the face, never from a
module behind it. So a package can move its insides around without breaking anyone, and the
arrows of the architecture stay what the faces say they are.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import meshplane

ROOT = Path(meshplane.__file__).parent
PACKAGES = sorted(
    ".".join(("meshplane", *p.parent.relative_to(ROOT).parts)) for p in ROOT.rglob("__init__.py")
)


def _module_and_package(path: Path) -> tuple[str, str]:
    parts = ("meshplane", *path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    return ".".join(parts), ".".join(parts[:-1])


def _reaches_behind_a_face(path: Path) -> list[str]:
    """`from meshplane.x.y import ...` lines of `path` where meshplane.x.y is a module behind
    another package's face. A package's own modules, and those of the packages it is inside
    (translate/ may use xds/type_urls.py, anyone meshplane/errors.py), are not behind a face."""
    _, package = _module_and_package(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        target = node.module
        if not target.startswith("meshplane.") or target in PACKAGES:
            continue
        owner = target.rsplit(".", 1)[0]
        if owner != package and not package.startswith(owner + "."):
            found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: from {target}")
    return found


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "meshplane"])
def test_every_package_states_its_public_names(package: str) -> None:
    face = importlib.import_module(package)
    names = getattr(face, "__all__", None)
    assert names, f"{package}/__init__.py has no __all__"
    missing = [name for name in names if not hasattr(face, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def test_other_packages_are_imported_through_their_faces() -> None:
    found = [line for path in sorted(ROOT.rglob("*.py")) for line in _reaches_behind_a_face(path)]
    assert not found, "imports behind another package's face:\n" + "\n".join(found)
