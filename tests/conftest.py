"""pytest hooks and fixtures of the template's test suite; the work is in tests/harness/.

- `template_src`: a plain (non-git) copy of the template, so renders read the working tree
  directly instead of Copier cloning the repository for each of hundreds of renders.
- The render matrix is a pairwise covering set of the structural questions; `--full-matrix`
  renders their full product, `--exhaustive` the full product of every question; `--all-pairs`
  runs the generated pipelines for the whole pairwise covering set; `--shard i/n` runs one
  slice of the suite, so CI can spread it over a runner matrix.
- Services (Docker daemon, base image, registry, SSH host) are session fixtures that skip,
  naming what is missing, when a tool is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import render, services
from tests.harness.ci_run import rows_of, write_summary
from tests.harness.matrix import variants
from tests.harness.session import RenderStats, WorkerLoad, shard_slice

# Before Copier is imported anywhere (see prepare_environment).
render.prepare_environment()

# The CCDS-shaped cookiecutter template (tests/test_fleet_adopt.py) has a team's tests inside.
collect_ignore = ["ccds_template"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("template")
    group.addoption(
        "--exhaustive",
        action="store_true",
        help="render every combination of every question, value-only ones included",
    )
    group.addoption(
        "--full-matrix",
        action="store_true",
        help="render the full product of the structural questions, not only a pairwise covering "
        "set of them (the template's own sharded CI)",
    )
    group.addoption(
        "--all-pairs",
        action="store_true",
        help="run the generated CI pipelines for the whole pairwise covering set, not only "
        "the core set (each provider alone and all together)",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only the I-th of N slices of the collected tests (1-based)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Test modules choose their CI variants at import (harness/ci_variants.py), before fixtures.
    if config.getoption("all_pairs"):
        os.environ["TEMPLATE_TESTS_ALL_PAIRS"] = "1"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        option = metafunc.config.getoption
        chosen = variants(exhaustive=option("exhaustive"), full=option("full_matrix"))
        metafunc.parametrize("variant", chosen, ids=[v.id for v in chosen])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("shard")
    if not shard:
        return
    try:
        kept = shard_slice(items, shard)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


_RENDER_STATS = RenderStats()
_CI_RUNS: list[dict[str, str]] = []  # rows recorded by harness.ci_run.record_and_assert
_WORKER_LOAD = WorkerLoad()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    worker = getattr(report, "node", None)  # set by xdist on the controller
    _WORKER_LOAD.add(worker.gateway.id if worker else "main", report.nodeid, report.duration)
    if report.when == "call" and "test_variant_renders_cleanly" in report.nodeid:
        _RENDER_STATS.add(report.duration)
    if report.when == "call":
        _CI_RUNS.extend(rows_of(report.user_properties))


def pytest_terminal_summary(terminalreporter) -> None:
    if _CI_RUNS:
        terminalreporter.section("generated pipelines run locally")
        write_summary(terminalreporter.write_line, _CI_RUNS)
    if _RENDER_STATS.count:
        terminalreporter.write_line(_RENDER_STATS.line())
    terminalreporter.section("load per worker")
    for line in _WORKER_LOAD.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render.copy_template(tmp_path_factory.mktemp("template-src"))


@pytest.fixture(scope="session")
def template_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render.template_releases(tmp_path_factory.mktemp("template-releases"))


@pytest.fixture(scope="session")
def offline_uv_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return render.offline_uv_env(tmp_path_factory.mktemp("pytorch-cpu-index"))


@pytest.fixture(scope="session")
def generated_projects(template_src, tmp_path_factory, offline_uv_env):
    """Generate each variant's repository once per worker (mark its tests with
    pytest.mark.xdist_group(variant.id) so they share a worker); tests clone it."""
    cache: dict[str, Path] = {}

    def get(variant) -> Path:
        if variant.id not in cache:
            root = tmp_path_factory.mktemp("generated")
            cache[variant.id] = render.generate_project(
                template_src, root / "project", variant.data, offline_uv_env
            )
        return cache[variant.id]

    return get


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[dict[str, str]]:
    """A private dockerd for this session (one per xdist worker); the client env."""
    with services.docker_daemon() as env:
        yield env


@pytest.fixture(scope="session")
def base_image(docker_daemon: dict[str, str]) -> str:
    return services.import_base_image(docker_daemon)


@pytest.fixture(scope="session")
def local_registry() -> Iterator[str]:
    with services.local_registry() as address:
        yield address


@pytest.fixture(scope="session")
def docker_env(docker_daemon, base_image, local_registry) -> dict[str, str]:
    return services.docker_env(docker_daemon, base_image, local_registry)


@pytest.fixture(scope="session")
def ssh_host(docker_daemon: dict[str, str]) -> Iterator[dict[str, str]]:
    with services.ssh_host(docker_daemon) as settings:
        yield settings
