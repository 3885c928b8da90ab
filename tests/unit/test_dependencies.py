"""Every third-party module the shipped code imports comes with a runtime install.

The Docker image installs `[project.dependencies]` only (no test extra): a module that
the test extra happens to bring along (numpy came only through pandas once) would be
missing there, and the process would fail on its first import of it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("events", "projections", "services", "alerts", "salespulse_client")


def imported_modules() -> dict[str, Path]:
    """Top-level module name -> a file importing it, for every absolute import shipped."""
    found: dict[str, Path] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.partition(".")[0], path)
    return found


def runtime_closure() -> set[str]:
    """The distributions a runtime install brings: the declared ones and what they require
    (with the extras they are asked for), transitively."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [Requirement(line) for line in declared]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        extras = {"", *requirement.extras}
        for line in metadata.distribution(name).requires or ():
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra})
                                            for extra in extras):
                todo.append(needed)
    return seen


def test_every_module_the_shipped_code_imports_is_installed_by_its_runtime_dependencies(
) -> None:
    first_party = {*SHIPPED, "tests"}
    distributions = metadata.packages_distributions()
    closure = runtime_closure()
    missing = {
        module: (sorted(distributions.get(module, ["(no distribution)"])),
                 str(path.relative_to(ROOT)))
        for module, path in imported_modules().items()
        if module not in sys.stdlib_module_names and module not in first_party
        and not {canonicalize_name(d) for d in distributions.get(module, [])} & closure
    }
    assert not missing, f"imported, but not installed by [project.dependencies]: {missing}"
