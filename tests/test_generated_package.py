"""The generated package's import graph: no cycle, and imports only go down the layers.

Every distinct rendering of src/<package>/ (the answers that change which modules exist or what
they import) is rendered and its import graph built with grimp, the engine of import-linter.
"""

from __future__ import annotations

import itertools
import sys

import grimp
import pytest

from tests.conftest import render
from tests.variants import answer_space, rejected

PACKAGE = "my_model"
# The questions that change the package's modules or their imports.
PACKAGE_QUESTIONS = ("ml_framework", "experiment_tracking", "serving", "deploy_target")

# The intended layering, highest first: a module may import only from lower layers (or from
# its own layer where siblings are not independent). Modules a rendering lacks are skipped.
LAYERS = (
    grimp.Layer("__main__"),
    grimp.Layer("cli", "serve", "train_ddp"),
    grimp.Layer("quality", "release", "monitor", "traffic", "remote", "plots", independent=False),
    grimp.Layer("train", "evaluate", "predict"),
    grimp.Layer("data", "features", "model", "reference", "tracking", independent=False),
    grimp.Layer("config", "schema", "thresholds"),
)


def package_renderings() -> list[dict[str, str]]:
    renderings = []
    for values in itertools.product(*(answer_space(name) for name in PACKAGE_QUESTIONS)):
        answers = {"use_docker": True, **dict(zip(PACKAGE_QUESTIONS, values, strict=True))}
        if not rejected(answers):
            renderings.append(answers)
    return renderings


RENDERINGS = package_renderings()


@pytest.fixture(
    params=RENDERINGS, ids=["-".join(r[q] for q in PACKAGE_QUESTIONS) for r in RENDERINGS]
)
def import_graph(request, template_src, tmp_path, monkeypatch) -> grimp.ImportGraph:
    project = render(template_src, tmp_path / "project", {**request.param, "package_name": PACKAGE})
    # grimp finds the package on sys.path; it reads the sources without importing them.
    monkeypatch.syspath_prepend(str(project / "src"))
    monkeypatch.delitem(sys.modules, PACKAGE, raising=False)
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _chain(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    back = graph.find_shortest_chain(imported, importer) or ()
    return " -> ".join(module.removeprefix(f"{PACKAGE}.") for module in (importer, *back))


def test_package_has_no_import_cycle(import_graph):
    breakers = import_graph.nominate_cycle_breakers(PACKAGE)
    cycles = sorted(_chain(import_graph, importer, imported) for importer, imported in breakers)
    assert not cycles, "import cycles in the generated package:\n" + "\n".join(cycles)


def test_imports_follow_the_layers(import_graph):
    present = {module.removeprefix(f"{PACKAGE}.") for module in import_graph.modules}
    layers = [
        grimp.Layer(*sorted(set(layer.module_tails) & present), independent=layer.independent)
        for layer in LAYERS
    ]
    unknown = present - {PACKAGE} - {tail for layer in LAYERS for tail in layer.module_tails}
    assert not unknown, f"modules missing from LAYERS (place them in a layer): {sorted(unknown)}"
    illegal = import_graph.find_illegal_dependencies_for_layers(layers, containers={PACKAGE})
    routes = sorted(
        " -> ".join(["|".join(sorted(route.heads)), *route.middle, "|".join(sorted(route.tails))])
        for dependency in illegal
        for route in dependency.routes
    )
    assert not routes, "imports against the layering:\n" + "\n".join(routes)
