"""The package's imports go down its layers only, and never in a cycle.

The layers, from the bottom (see ``docs/architecture.rst``): shared utilities,
linear algebra, data, loss, geometry, solvers, the public faces (estimators,
``implicit_bias``, ``metrics``), datasets, plotting, studies, the command line.
A module may import from its own layer or any layer below it.
"""

import ast
from pathlib import Path

import pytest

import sklearn_ntp

PACKAGE = Path(sklearn_ntp.__file__).parent

LAYERS = [
    {"_exceptions", "_utils"},
    {"_linalg"},
    {"_data"},
    {"_loss"},
    {"_geometry"},
    {"_solvers"},
    {"_classifier", "_checker", "implicit_bias", "metrics"},
    {"datasets"},
    {"plotting"},
    {"studies"},
    {"_cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

#: The only imports allowed up the layers, each with its reason and the release
#: that removes it.
ALLOWED_UPWARD = {
    # Deprecated alias: convergence_rate_curve moved from plotting to studies in
    # 0.2; plotting.__getattr__ imports it on access until the alias goes in 0.3.
    ("sklearn_ntp.plotting", "sklearn_ntp.studies._rates"),
}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["sklearn_ntp", *parts])


def _imported_modules(path):
    """Absolute names of the package's modules that ``path`` imports, anywhere in it."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "sklearn_ntp")
    return found


def import_graph():
    """``{module: {imported package modules}}`` for every module but the root ``__init__``."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        if name == "sklearn_ntp":
            continue
        # ``from .pkg import name`` may name a module or an attribute: keep modules only.
        graph[name] = {m for m in _imported_modules(path) if m in modules and m != name}
    return graph


def _layer(module):
    return module.split(".")[1]


def upward_arrows(graph):
    return sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if b != "sklearn_ntp" and RANK[_layer(b)] > RANK[_layer(a)]
    )


def cycles(graph):
    """One cycle through each strongly connected set of modules (depth-first search)."""
    state, stack, found = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_top_level_module_has_a_layer():
    top = {_layer(m) for m in import_graph()}
    assert top <= set(RANK), f"modules without a layer: {sorted(top - set(RANK))}"


def test_imports_only_go_down_the_layers():
    assert [arrow for arrow in upward_arrows(import_graph())
            if arrow not in ALLOWED_UPWARD] == []


def test_every_allowed_upward_import_is_still_there():
    # An allowance outliving its import would let a new one in unnoticed.
    assert ALLOWED_UPWARD <= set(upward_arrows(import_graph()))


def test_the_package_imports_have_no_cycle():
    assert cycles(import_graph()) == []


def test_no_module_imports_the_package_root():
    # ``from sklearn_ntp import X`` inside the package would import the estimators
    # (the top layer) from below.
    importers = [m for m, targets in import_graph().items() if "sklearn_ntp" in targets]
    assert importers == []


@pytest.mark.parametrize(
    "graph, arrows, n_cycles",
    [
        ({"sklearn_ntp._loss.a": {"sklearn_ntp._geometry.b"}}, 1, 0),
        ({"sklearn_ntp._geometry.b": {"sklearn_ntp._loss.a"}}, 0, 0),
        (
            {
                "sklearn_ntp._loss.a": {"sklearn_ntp._loss.b"},
                "sklearn_ntp._loss.b": {"sklearn_ntp._loss.a"},
            },
            0,
            1,
        ),
    ],
)
def test_the_checks_find_what_they_look_for(graph, arrows, n_cycles):
    assert len(upward_arrows(graph)) == arrows
    assert len(cycles(graph)) == n_cycles
