"""The package's imports point one way: no cycles, and the mathematics never imports the plotting.

The graph is read off the source (every `import` and `from ... import`, those inside
functions too: a lazy import is a dependency all the same), so that a cycle closed
by an import inside a method is seen before anyone calls the method. Then, at run
time, `import manual_bptt` and every one of its modules but the plotting load neither
the plotting nor matplotlib nor torch. NumPy alone: this runs in the torch-free venv.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import manual_bptt

PACKAGE_DIR = Path(manual_bptt.__file__).parent
PLOTTING = "manual_bptt.tools.plotting"
#: The folders of the mathematics and of what checks it: none of them may reach the plotting.
NO_PLOTTING_UNDER = ("model", "reference", "fast", "inputs", "verification")


def package_modules() -> dict[str, tuple[Path, bool]]:
    """{dotted module name: (its file, whether it is a package's __init__)} for every module of manual_bptt."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph() -> dict[str, set[str]]:
    """{module: the modules of manual_bptt it imports, anywhere in its source}."""
    modules = package_modules()
    graph = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:                                   # from ..model import names: up level-1 packages
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:                         # `from package import module` names a module
                    imported = f"{source}.{alias.name}"
                    if imported in modules:
                        graph[name].add(imported)
                    elif source in modules:
                        graph[name].add(source)
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A chain of imports from start to goal, or None when there is none."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]]):
            if nxt == goal:
                return path + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                paths.append(path + [nxt])
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    cycles = [chain for name in graph for chain in [reaches(graph, name, name)] if chain is not None]
    assert not cycles, "modules that import themselves through others:\n" + "\n".join(
        "  " + " → ".join(chain) for chain in cycles)


def test_the_mathematics_never_imports_the_plotting():
    graph = import_graph()
    folder = {name: name.split(".")[1] if name.count(".") else None for name in graph}
    maths = [name for name in graph if folder[name] in NO_PLOTTING_UNDER or (folder[name] == "tools" and name != PLOTTING)]
    assert any(name.startswith("manual_bptt.tools.derivation") for name in maths)       # the graph was read
    chains = [chain for name in maths for chain in [reaches(graph, name, PLOTTING)] if chain is not None]
    assert not chains, "modules that import the plotting (it imports them, never the reverse):\n" + "\n".join(
        "  " + " → ".join(chain) for chain in chains)


def test_importing_the_package_and_its_modules_loads_no_plotting_matplotlib_or_torch():
    others = sorted(name for name in package_modules() if name not in (PLOTTING, "manual_bptt"))
    script = textwrap.dedent(f"""
        import importlib, sys
        import manual_bptt
        loaded = [m for m in ("matplotlib", "torch", {PLOTTING!r}) if m in sys.modules]
        assert not loaded, f"import manual_bptt loaded {{loaded}}"
        for name in {others!r}:
            importlib.import_module(name)
            loaded = [m for m in ("matplotlib", "torch", {PLOTTING!r}) if m in sys.modules]
            assert not loaded, f"import {{name}} loaded {{loaded}}"
        print("imported", len({others!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"imported {len(others)}"
