"""Shared fixtures and options of the template's test suite.

- `template_src`: a plain (non-git) copy of the template, so renders read the working tree
  directly instead of Copier cloning the repository for each of hundreds of renders.
- `render()`: render one variant in-process with Copier's API.
- `--exhaustive` renders the full product of every question; `--shard i/n` runs one slice of
  the suite, so CI can spread the variant matrix over a runner matrix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml


def _prepare_environment() -> None:
    """Let uv find every interpreter pyenv installed (python_version 3.10 to 3.13), the current
    one first, and never download one: these machines reach only the package registries.

    Runs at import, before Copier: Copier gives its tasks plumbum's copy of the environment,
    which plumbum takes when it is first imported.
    """
    if shutil.which("pyenv") and "PYENV_VERSION" not in os.environ:
        current = subprocess.run(
            ["pyenv", "version-name"], capture_output=True, text=True
        ).stdout.strip()
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True
        ).stdout.split()
        others = [v for v in versions if v.startswith("3.") and v != current]
        os.environ["PYENV_VERSION"] = ":".join([current, *others])
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


_prepare_environment()

import copier  # noqa: E402
from plumbum import local  # noqa: E402

from tests.variants import QUESTIONS, variants  # noqa: E402

# Fixtures that start real services (Docker daemon, registry, ...) live in their own modules.
pytest_plugins = ["tests.fixtures_services"]

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PARTS = ("copier.yml", "template", "hooks")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("template")
    group.addoption(
        "--exhaustive",
        action="store_true",
        help="render every combination of every question, value-only ones included",
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
    # Test modules choose their CI variants at import (tests/covering.py), before fixtures.
    if config.getoption("all_pairs"):
        os.environ["TEMPLATE_TESTS_ALL_PAIRS"] = "1"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        chosen = variants(exhaustive=metafunc.config.getoption("exhaustive"))
        metafunc.parametrize("variant", chosen, ids=[v.id for v in chosen])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("shard")
    if not shard:
        return
    try:
        index, total = (int(part) for part in shard.split("/"))
        assert 1 <= index <= total
    except (ValueError, AssertionError):
        raise pytest.UsageError(f"--shard expects I/N with 1 <= I <= N, got {shard!r}") from None
    kept = [item for position, item in enumerate(items) if position % total == index - 1]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


# Render counts and times, gathered on the controller from every xdist worker's reports.
_RENDER_STATS = {"count": 0, "seconds": 0.0, "started": time.monotonic()}


# Local CI runs, reported by the provider tests through record_ci_run (below).
_CI_RUNS: list[dict[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "test_variant_renders_cleanly" in report.nodeid:
        _RENDER_STATS["count"] += 1
        _RENDER_STATS["seconds"] += report.duration
    if report.when == "call":
        _CI_RUNS.extend(value for name, value in report.user_properties if name == "ci_run")


def pytest_terminal_summary(terminalreporter) -> None:
    if _CI_RUNS:
        columns = ["variant", "provider", "jobs run", "substituted or recorded", "result"]
        rows = [[run[c] for c in columns] for run in _CI_RUNS]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        terminalreporter.section("generated pipelines run locally")
        for row in [columns, ["-" * w for w in widths], *sorted(rows)]:
            terminalreporter.write_line(
                "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
            )
    if _RENDER_STATS["count"]:
        terminalreporter.write_line(
            f"variant matrix: {_RENDER_STATS['count']} variants rendered and checked in "
            f"{_RENDER_STATS['seconds']:.0f} s of test time "
            f"({time.monotonic() - _RENDER_STATS['started']:.0f} s since the session started)"
        )


def copy_template(dst: Path) -> Path:
    """This template's parts (not its tests or docs) copied into dst, as Copier reads them."""
    for part in TEMPLATE_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, dst / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dst / part)
    return dst


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_template(tmp_path_factory.mktemp("template-src"))


BOT = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
TEMPLATE_V2_NOTE = "# Template v2.0.0: pre-commit hooks reviewed.\n"


@pytest.fixture(scope="session")
def template_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git copy of this template with two releases: v1.0.0 as it is, and v2.0.0 with one
    template-owned change (a line in .pre-commit-config.yaml), for the template-update jobs."""
    repo = copy_template(tmp_path_factory.mktemp("template-releases"))

    def git(*args: str) -> None:
        subprocess.run(["git", *BOT, *args], cwd=repo, check=True, capture_output=True)

    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "-m", "Release v1")
    git("tag", "v1.0.0")
    hooks = repo / "template" / ".pre-commit-config.yaml"
    hooks.write_text(TEMPLATE_V2_NOTE + hooks.read_text())
    git("commit", "--quiet", "-am", "Release v2")
    git("tag", "v2.0.0")
    return repo


def generated_from_release(project: Path, releases: Path, version: str = "v1.0.0") -> None:
    """Make a generated repository record that it came from `releases` at `version` (its files
    are that release's: template_src and v1.0.0 are the same copy), and commit that."""
    answers_file = project / ".copier-answers.yml"
    header, _, _ = answers_file.read_text().partition("\n")
    answers = yaml.safe_load(answers_file.read_text())
    answers.update({"_commit": version, "_src_path": str(releases)})
    answers_file.write_text(header + "\n" + yaml.safe_dump(answers, sort_keys=True))
    subprocess.run(
        ["git", *BOT, "commit", "--quiet", "--no-verify", "-am", f"Generated from {version}"],
        cwd=project,
        check=True,
        capture_output=True,
    )


def render(
    template: Path,
    dst: Path,
    data: dict[str, Any],
    skip_tasks: bool = True,
    env: dict[str, str] | None = None,
) -> Path:
    """Render in-process; env reaches the copy-time tasks (Copier runs them with plumbum's env)."""
    with local.env(**(env or {})):
        copier.run_copy(
            str(template),
            str(dst),
            data=data,
            defaults=True,
            unsafe=True,
            skip_tasks=skip_tasks,
            quiet=True,
        )
    return dst


@pytest.fixture(scope="session")
def questions() -> dict[str, dict[str, Any]]:
    return QUESTIONS


# The one PyTorch build this machine can install offline: a CPU wheel that the machine image
# ships for CPython 3.11. Generated PyTorch projects take torch from the "pytorch-cpu" index
# (download.pytorch.org, unreachable here); tests point that index at a local copy instead.
LOCAL_WHEELS = Path("/opt/wheels")


@pytest.fixture(scope="session")
def offline_uv_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that lets generated projects resolve every dependency offline."""
    env = {"UV_PYTHON_DOWNLOADS": "never"}
    wheels = sorted(LOCAL_WHEELS.glob("torch-*+cpu-*.whl"))
    if wheels:
        index = tmp_path_factory.mktemp("pytorch-cpu-index")
        (index / "torch").mkdir()
        links = []
        for wheel in wheels:
            (index / "torch" / wheel.name).symlink_to(wheel)
            links.append(f'<a href="{wheel.name}">{wheel.name}</a>')
        (index / "torch" / "index.html").write_text(
            "<html><body>" + "".join(links) + "</body></html>"
        )
        env["UV_INDEX"] = f"pytorch-cpu={index.as_uri()}"
    return env


def generate_project(template: Path, dst: Path, data: dict[str, Any], env: dict[str, str]) -> Path:
    """A generated repository as a user gets it: rendered, then set up by the copy-time tasks
    (git, uv lock, DVC with its local remote under dst's parent, first pipeline run, commits)."""
    return render(
        template,
        dst,
        data,
        skip_tasks=False,
        env={**env, "DVC_LOCAL_REMOTE_ROOT": str(dst.parent / "dvc-remotes")},
    )


@pytest.fixture
def record_ci_run(record_property):
    """Report one local pipeline run for the summary table printed at the end of the session."""

    def record(
        variant: str, provider: str, jobs_run: list[str], substituted: list[str], result: str
    ) -> None:
        record_property(
            "ci_run",
            {
                "variant": variant,
                "provider": provider,
                "jobs run": ", ".join(jobs_run) or "-",
                "substituted or recorded": ", ".join(substituted) or "-",
                "result": result,
            },
        )

    return record


@pytest.fixture(scope="session")
def generated_projects(template_src, tmp_path_factory, offline_uv_env):
    """Generate each variant's repository once per worker (mark its tests with
    pytest.mark.xdist_group(variant.id) so they share a worker); tests clone it."""
    cache: dict[str, Path] = {}

    def get(variant) -> Path:
        if variant.id not in cache:
            root = tmp_path_factory.mktemp("generated")
            cache[variant.id] = generate_project(
                template_src, root / "project", variant.data, offline_uv_env
            )
        return cache[variant.id]

    return get


def clone(project: Path, dst: Path) -> Path:
    """A fresh checkout, as a CI runner gets it (git only; DVC data comes from the remote)."""
    subprocess.run(["git", "clone", "--quiet", str(project), str(dst)], check=True)
    return dst
