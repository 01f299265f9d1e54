"""The fleet view (fleet/, docs/platform-teams.md): a fleet of repositories made from a git copy
of this template at three releases, reported on and updated in bulk.

Releases: v1.0.0 (the template as it is), v2.0.0 (a template-owned line added to
.pre-commit-config.yaml), v3.0.0 (a team-owned test file renamed, with its migration). Most
repositories are rendered with tasks skipped and committed; the one the bulk update must leave
green is a fully generated project. Every repository has a bare `origin` remote.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from fleet import forge
from tests.harness.commands import run
from tests.harness.git import commit, git
from tests.harness.github import gh_standin
from tests.harness.render import (
    REPO_ROOT,
    clone,
    copy_template,
    generate_project,
    generated_from_release,
    release,
    rename_with_migration,
    render,
    template_releases,
)

pytestmark = pytest.mark.xdist_group("fleet")

DOC = REPO_ROOT / "docs" / "platform-teams.md"
QUALITY, PERFORMANCE = "tests/test_model_quality.py", "tests/test_model_performance.py"
SHAPING = {
    "ci_providers": ["github"],
    "ml_framework": "sklearn",
    "experiment_tracking": "none",
    "serving": "fastapi",
    "deploy_target": "none",
}
DRIFT_LINE = 'LABEL org.example.team="ml"\n'
LIST = """\
# The test fleet: path, labels, and where the forge knows the repository.
current         platform
one-behind      team-a   github=acme/one-behind
two-behind      team-a
drift           team-b
team-edits      team-b
broken-answers  team-b
update-pushed   team-c   github=acme/update-pushed
relative-src    team-c
dirty           team-c
gone-release    team-c
"""


def release_v3(repo: Path) -> None:
    """A team-owned test renamed in the template, with the migration moving each team's copy."""
    rename_with_migration(repo, QUALITY, PERFORMANCE, "v3.0.0")
    release(repo, "v3.0.0")


def with_origin(project: Path) -> Path:
    """Give the repository a bare `origin` (where CI pushes update branches)."""
    origin = project.parent / f"{project.name}.git"
    git(project.parent, "clone", "--quiet", "--bare", str(project), str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "fetch", "--quiet", "origin")
    return project


def rendered_repo(root: Path, name: str, releases: Path, version: str) -> Path:
    project = render(releases, root / name, SHAPING, vcs_ref=version)
    git(project, "init", "--quiet", "--initial-branch=main")
    commit(project, f"Generated from {version}")
    return project


def make_fleet(root: Path, releases: Path, uv_env: dict[str, str]) -> dict[str, Path]:
    repos = {"current": rendered_repo(root, "current", releases, "v3.0.0")}
    one_behind = rendered_repo(root, "one-behind", releases, "v2.0.0")
    # The update job runs `uv run` in a clean checkout: the lock must be committed, as in a
    # generated repository.
    run(["uv", "lock", "--quiet"], one_behind, {**os.environ, **uv_env})
    commit(one_behind, "Lock")
    repos["one-behind"] = one_behind

    two_behind = generate_project(
        copy_template(root / "v1-src"), root / "two-behind", SHAPING, uv_env
    )
    generated_from_release(two_behind, releases, "v1.0.0")
    repos["two-behind"] = two_behind

    drift = repos["drift"] = rendered_repo(root, "drift", releases, "v3.0.0")
    (drift / "Dockerfile").write_text((drift / "Dockerfile").read_text() + DRIFT_LINE)
    config = drift / ".pre-commit-config.yaml"
    config.write_text(config.read_text().replace("repos:", "# reviewed by the team\nrepos:", 1))
    commit(drift, "Team edits a template-owned file")

    team = repos["team-edits"] = rendered_repo(root, "team-edits", releases, "v3.0.0")
    params = team / "params.yaml"
    params.write_text(params.read_text() + "# tuned by the team\n")
    (team / PERFORMANCE).write_text((team / PERFORMANCE).read_text() + "\n# team check\n")
    commit(team, "Team edits team-owned files only")

    broken = repos["broken-answers"] = rendered_repo(root, "broken-answers", releases, "v3.0.0")
    (broken / ".copier-answers.yml").write_text("_commit: [v3.0.0\n")
    commit(broken, "A bad merge of the answers file")

    pushed = repos["update-pushed"] = rendered_repo(root, "update-pushed", releases, "v2.0.0")
    relative = repos["relative-src"] = rendered_repo(root, "relative-src", releases, "v2.0.0")
    answers = relative / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(str(releases), "../template-releases"))
    commit(relative, "Answers recorded with a relative template path")
    dirty = repos["dirty"] = rendered_repo(root, "dirty", releases, "v2.0.0")
    gone = repos["gone-release"] = rendered_repo(root, "gone-release", releases, "v2.0.0")
    answers = gone / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("_commit: v2.0.0", "_commit: v0.9.0"))
    commit(gone, "Answers recorded from a release the template has since deleted")

    for project in repos.values():
        with_origin(project)
    git(pushed, "push", "--quiet", "origin", "HEAD:refs/heads/template-update/3.0.0")
    (dirty / "params.yaml").write_text("# work in progress\n")
    (root / "repos.txt").write_text(LIST)
    return repos


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, offline_uv_env):
    root = tmp_path_factory.mktemp("fleet")
    releases = template_releases(root / "template-releases")
    release_v3(releases)
    return root, releases, make_fleet(root, releases, offline_uv_env)


class FakeForge(http.server.BaseHTTPRequestHandler):
    """GitHub's API for the one open pull request of the fleet (update-pushed), whose CI failed,
    and GitLab's for a merge request whose pipeline runs; only with the token t0k."""

    ROUTES = {
        "/repos/acme/update-pushed/pulls?state=open&head=acme%3Atemplate-update%2F3.0.0": [
            {"html_url": "https://github.com/acme/update-pushed/pull/7", "head": {"sha": "abc"}}
        ],
        "/repos/acme/update-pushed/commits/abc/check-runs": {
            "check_runs": [
                {"status": "completed", "conclusion": "success"},
                {"status": "completed", "conclusion": "failure"},
            ]
        },
        "/api/v4/projects/ml%2Fforecast/merge_requests?state=opened"
        "&source_branch=template-update%2F3.0.0": [{"iid": 3}],
        "/api/v4/projects/ml%2Fforecast/merge_requests/3": {
            "web_url": "https://gitlab.example.com/ml/forecast/-/merge_requests/3",
            "head_pipeline": {"status": "running"},
        },
    }

    def do_GET(self) -> None:
        authorized = self.headers["Authorization"] == "Bearer t0k"
        authorized |= self.headers["PRIVATE-TOKEN"] == "t0k"
        body = self.ROUTES.get(self.path) if authorized else None
        self.send_response(404 if body is None else 200)
        self.end_headers()
        self.wfile.write(
            json.dumps(body if body is not None else {"message": "Not Found"}).encode()
        )

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def forge_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeForge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_gitlab_merge_request_and_its_pipeline(forge_api):
    env = {"GITLAB_TOKEN": "t0k", "GITLAB_API_URL": f"{forge_api}/api/v4"}
    assert forge.open_request("gitlab", "ml/forecast", "template-update/3.0.0", env) == {
        "url": "https://gitlab.example.com/ml/forecast/-/merge_requests/3",
        "ci": "running",
    }
    assert forge.open_request("gitlab", "ml/forecast", "template-update/3.0.0", {}) is None


def documented(section: str) -> list[str]:
    """The `uv run fleet` commands of a section of docs/platform-teams.md, as written."""
    text = re.split(r"\n##+ ", DOC.read_text().split(section, 1)[1])[0]
    return re.findall(r"^uv run fleet .*$", text, flags=re.MULTILINE)


def fleet_env(**extra: str) -> dict[str, str]:
    """Run the documented commands from the fleet's directory against this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "GITHUB_TOKEN")}
    return {**env, "UV_PROJECT": str(REPO_ROOT), "UV_FROZEN": "1", **extra}


@pytest.fixture(scope="module")
def reports(fleet, forge_api):
    root, _, _ = fleet
    commands = documented("## The fleet view")
    assert len(commands) == 4, commands
    env = fleet_env(GH_TOKEN="t0k", GITHUB_API_URL=forge_api)
    table = None
    for command in commands:
        result = run(["bash", "-c", command], root, env)
        print(f"$ {command}\n{result.stdout[-2000:]}")
        table = table or result.stdout
    return root, json.loads((root / "fleet.json").read_text()), table


@pytest.mark.slow
def test_report_json_field_by_field(reports, fleet):
    root, data, _ = reports
    _, releases, _ = fleet
    by_repo = {entry["repo"]: entry for entry in data}
    assert list(by_repo) == [line.split()[0] for line in LIST.splitlines()[1:]]
    up_to_date = {"update_branches": [], "update_pending": False, "update_request": None}
    expected = {
        "current": {"release": "v3.0.0", "behind": 0, "drift": [], **up_to_date},
        "one-behind": {"release": "v2.0.0", "behind": 1, "drift": [], **up_to_date},
        "two-behind": {"release": "v1.0.0", "behind": 2, "drift": [], **up_to_date},
        "drift": {
            "release": "v3.0.0",
            "behind": 0,
            "drift": [
                {"path": ".pre-commit-config.yaml", "added": 1, "removed": 0},
                {"path": "Dockerfile", "added": 1, "removed": 0},
            ],
            **up_to_date,
        },
        "team-edits": {"release": "v3.0.0", "behind": 0, "drift": [], **up_to_date},
        "update-pushed": {
            "release": "v2.0.0",
            "behind": 1,
            "drift": [],
            "update_branches": ["template-update/3.0.0"],
            "update_pending": True,
            "update_request": {
                "url": "https://github.com/acme/update-pushed/pull/7",
                "ci": "failure",
            },
        },
        "dirty": {"release": "v2.0.0", "behind": 1, "drift": [], **up_to_date},
    }
    for name, fields in expected.items():
        entry = by_repo[name]
        assert {key: entry[key] for key in fields} == fields, name
        assert entry["latest"] == "v3.0.0", name
        assert entry["answers"] == SHAPING, name
        assert entry["problems"] == [], name
    assert by_repo["one-behind"]["labels"] == ["team-a"]
    assert by_repo["update-pushed"]["labels"] == ["team-c"]

    broken = by_repo["broken-answers"]
    assert broken["release"] is None and broken["behind"] is None and broken["answers"] == {}
    assert len(broken["problems"]) == 1
    assert broken["problems"][0].startswith("unreadable .copier-answers.yml: ")
    assert by_repo["relative-src"]["problems"] == [
        "relative _src_path '../template-releases': set it to the template's absolute path or URL"
    ]
    assert by_repo["relative-src"]["behind"] is None
    assert by_repo["gone-release"]["problems"] == [f"release v0.9.0 no longer exists in {releases}"]


@pytest.mark.slow
def test_markdown_and_terminal_table_list_every_repository(reports):
    root, data, table = reports
    markdown = (root / "fleet.md").read_text().splitlines()
    assert markdown[0].startswith("| repository | labels | release | behind |")
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in markdown[2:]}
    assert list(rows) == [entry["repo"] for entry in data]
    assert "Dockerfile (+1 -0)" in rows["drift"]
    assert "https://github.com/acme/update-pushed/pull/7 CI: failure" in rows["update-pushed"]
    for entry in data:
        assert entry["repo"] in table


@pytest.mark.slow
def test_html_page_in_a_headless_browser(reports):
    root, data, _ = reports
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/install-ci-tools installs it)")
    page = root / "fleet.html"
    assert not re.search(r'(src|href)="|<link', page.read_text()), "the page must load nothing"

    def table_in_browser(url: str) -> tuple[list[list[str]], str]:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
        dom = run(command, root, timeout=120).stdout
        rows = re.findall(r"<tr>(.*?)</tr>", dom.split("<tbody>", 1)[1], flags=re.S)
        return [re.findall(r"<td>(.*?)</td>", row, flags=re.S) for row in rows], dom

    def behind(entry: dict) -> str:
        return "" if entry["behind"] is None else str(entry["behind"])

    cells, dom = table_in_browser(page.as_uri())
    assert [(c[0], c[2], c[3]) for c in cells] == [
        (e["repo"], e["release"] or "", behind(e)) for e in data
    ]
    chart = dom.split('<svg id="releases"', 1)[1].split("</svg>", 1)[0]
    bars = {"unknown": 1, "v0.9.0": 1, "v1.0.0": 1, "v2.0.0": 4, "v3.0.0": 3}
    for recorded, count in bars.items():
        bar = rf">{recorded}</text><rect [^>]*>(</rect>)?<text [^>]*>{count}</text>"
        assert re.search(bar, chart), recorded
    # Sorted by the page's own script, as a click on the header does (numbers as numbers).
    by_behind, _ = table_in_browser(page.as_uri() + "#sort=behind")
    order = sorted(data, key=lambda e: -1 if e["behind"] is None else e["behind"])
    assert [c[0] for c in by_behind] == [e["repo"] for e in order]


def snapshot(directory: Path) -> dict[str, str]:
    """Every file's digest (the environment uv made in .venv is not the repository's)."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and ".venv" not in path.relative_to(directory).parts
    }


@pytest.mark.slow
def test_bulk_update_updates_exactly_the_repos_behind_and_they_stay_green(
    reports, fleet, tmp_path, offline_uv_env, forge_api
):
    root, _, repos = fleet
    before = {
        name: (snapshot(project), snapshot(project.parent / f"{project.name}.git"))
        for name, project in repos.items()
    }
    gh = gh_standin(tmp_path / "gh-standin")
    env = fleet_env(
        GH_TOKEN="t0k",
        GITHUB_API_URL=forge_api,
        GH_STANDIN_DIR=str(gh),
        PATH=f"{gh}{os.pathsep}{os.environ['PATH']}",
        **offline_uv_env,
    )
    behind, label = documented("### Starting updates in bulk")
    result = run(["bash", "-c", behind + " --format json"], root, env, timeout=1800)
    print(result.stdout, result.stderr[-3000:])
    outcomes = {o["repo"]: o for o in json.loads(result.stdout)}
    assert {name: o["result"] for name, o in outcomes.items()} == {
        "one-behind": "updated",
        "two-behind": "updated",
        "update-pushed": "skipped",
        "dirty": "skipped",
    }
    assert outcomes["one-behind"]["detail"] == (
        "template update: https://github.com/acme/one-behind/pull/1"
    )
    assert outcomes["update-pushed"]["detail"] == "an update for v3.0.0 is already open"
    assert outcomes["dirty"]["detail"] == "dirty working tree"
    calls = (gh / "calls.log").read_text().splitlines()
    assert sorted(re.findall(r"--head (\S+)", "\n".join(calls))) == ["template-update/3.0.0"] * 2

    for name, project in repos.items():
        assert snapshot(project) == before[name][0], f"{name}: its working tree changed"
        origin = project.parent / f"{project.name}.git"
        branches = git(origin, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
        if name in ("one-behind", "two-behind"):
            assert branches == ["main", "template-update/3.0.0"], name
        else:
            assert snapshot(origin) == before[name][1], f"{name}: its remote changed"

    again = run(["bash", "-c", label], root, env, timeout=600)
    assert again.stdout.count("an update for v3.0.0 is already open") == 2, again.stdout

    updated = clone(repos["two-behind"].parent / "two-behind.git", tmp_path / "review")
    git(updated, "checkout", "--quiet", "template-update/3.0.0")
    assert (updated / PERFORMANCE).is_file() and not (updated / QUALITY).exists()
    ci = run(["uv", "run", "poe", "ci"], updated, {**os.environ, **offline_uv_env}, timeout=1800)
    print(ci.stdout[-2000:])
