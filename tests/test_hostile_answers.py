"""Hostile answers: each is refused before anything is written, with a message that names the
question, or it renders a project that is still well-formed and never runs the answer as code.

The corpus is a spec: every entry says which of the two it must be. A rendered project must
have every Python file compile with the answer only inside string literals, every TOML, YAML
and JSON file parse and hold the answer exactly (pyproject.toml, the answers file), and its
own `poe lint` pass. Answers that carry code are built to leave a marker file behind if they
ever run; the marker must never appear.
"""

from __future__ import annotations

import io
import os
import subprocess
import tokenize
import tomllib
from pathlib import Path

import pytest

from tests.harness.checks import assert_answers_recorded, assert_data_files_parse
from tests.harness.render import render

# Code an answer may try to smuggle in: it would create this file (under the test's tmp_path).
MARKER = "PWNED"
RUNS_CODE = f"__import__('pathlib').Path('{MARKER}').touch()"

REFUSED, RENDERS = "refused", "renders"
SLUG = {"project_slug": "hostile-model"}  # name cases test the name, not the derived slug
S3 = {"dvc_remote": "s3"}
# The longest names, with the options that write them into the most code.
LONGEST = {"experiment_tracking": "mlflow", "ci_providers": ["github", "gitlab", "jenkins"]}
LONGEST_TORCH = {"ml_framework": "pytorch", "deploy_target": "kubernetes", "python_version": "3.11"}

# (question, answer, other answers the case needs, outcome, fragment of the refusal message)
CORPUS: list[tuple[str, object, dict, str, str]] = [
    # project_name: lands in Python (docstring, FastAPI title, release), TOML via the slug,
    # Markdown.
    ("project_name", 'My "quoted" Model', SLUG, RENDERS, ""),
    ("project_name", "It's O'Brien's model", SLUG, RENDERS, ""),
    ("project_name", "back\\slash \\n model", SLUG, RENDERS, ""),
    ("project_name", f'"""; {RUNS_CODE} #', SLUG, RENDERS, ""),
    ("project_name", f"'''; {RUNS_CODE} #", SLUG, RENDERS, ""),
    ("project_name", f'"); {RUNS_CODE}; ("', SLUG, RENDERS, ""),
    ("project_name", "${HOME} $(id) `id`", SLUG, RENDERS, ""),
    ("project_name", "{{ 7 * 7 }} {% raw %}", SLUG, RENDERS, ""),
    ("project_name", "<script>alert(1)</script>", SLUG, RENDERS, ""),
    ("project_name", "Modèle d'été 🚀", SLUG, RENDERS, ""),
    ("project_name", "名前のモデル", SLUG, RENDERS, ""),
    ("project_name", "%s %d {0} {name}", SLUG, RENDERS, ""),
    ("project_name", "key: value # not: yaml", SLUG, RENDERS, ""),
    ("project_name", "A" * 81, SLUG, REFUSED, "keep it to 80 or fewer"),
    ("project_name", "two\nlines", SLUG, REFUSED, "one line of printable text"),
    ("project_name", "tab\there", SLUG, REFUSED, "one line of printable text"),
    ("project_name", "nul\x00byte", SLUG, REFUSED, "one line of printable text"),
    ("project_name", "\x1b[31mred", SLUG, REFUSED, "one line of printable text"),
    ("project_name", "line\u2028separator", SLUG, REFUSED, "one line of printable text"),
    ("project_name", "   ", SLUG, REFUSED, "must not be empty"),
    ("project_name", "---\nkey: value", SLUG, REFUSED, "one line of printable text"),
    # project_slug: a directory, distribution and image name.
    ("project_slug", "my-model\n", {}, REFUSED, "is invalid"),
    ("project_slug", "../evil", {}, REFUSED, "is invalid"),
    ("project_slug", "my model", {}, REFUSED, "is invalid"),
    ("project_slug", "MyModel", {}, REFUSED, "is invalid"),
    ("project_slug", "my_model", {}, REFUSED, "is invalid"),
    ("project_slug", "-lead", {}, REFUSED, "starting with a letter"),
    ("project_slug", "", {}, REFUSED, "is invalid"),
    ("project_slug", "a" * 65, {}, REFUSED, "keep it to 64 or fewer"),
    ("project_slug", "m", {}, RENDERS, ""),
    ("project_slug", "a" * 64, LONGEST, RENDERS, ""),
    ("project_slug", "b" * 64, LONGEST_TORCH, RENDERS, ""),
    # package_name: a directory and an import name.
    ("package_name", "my_model\n", {}, REFUSED, "is not a valid Python identifier"),
    ("package_name", "../x", {}, REFUSED, "is not a valid Python identifier"),
    ("package_name", "modèle", {}, REFUSED, "is not a valid Python identifier"),
    ("package_name", "Model", {}, REFUSED, "is not a valid Python identifier"),
    ("package_name", "import", {}, REFUSED, "is a Python keyword"),
    ("package_name", "json", {}, REFUSED, "would shadow a module"),
    ("package_name", "yaml", {}, REFUSED, "would shadow a module"),
    ("package_name", "os", {}, REFUSED, "would shadow a module"),
    ("package_name", "sklearn", {}, REFUSED, "would shadow a module"),
    ("package_name", "a" * 33, {}, REFUSED, "keep it to 32 or fewer"),
    ("package_name", "p" * 32, LONGEST, RENDERS, ""),
    ("package_name", "q" * 32, LONGEST_TORCH, RENDERS, ""),
    # description: TOML (pyproject.toml), a Python docstring, Markdown.
    ("description", 'Say "hi"', {}, RENDERS, ""),
    ("description", "a \\ b \\u0041 \\", {}, RENDERS, ""),
    ("description", f'x"""; {RUNS_CODE} #', {}, RENDERS, ""),
    ("description", '"] \n', {}, REFUSED, "a single line of printable text"),
    ("description", "emoji 🚀 ünïcode ∑", {}, RENDERS, ""),
    ("description", "multi\nline", {}, REFUSED, "a single line of printable text"),
    ("description", "\x07bell", {}, REFUSED, "a single line of printable text"),
    ("description", "", {}, REFUSED, "must not be empty"),
    ("description", "x" * 301, {}, REFUSED, "300 or fewer"),
    # author_name: TOML, LICENSE, the first commit.
    ("author_name", 'Team "A"', {}, RENDERS, ""),
    ("author_name", "O'Reilly \\ Co", {}, RENDERS, ""),
    ("author_name", '", email = "x@y.z" }]\n[evil]', {}, REFUSED, "one line of printable text"),
    ("author_name", '", email = "x@y.z" }, { name = "injected', {}, RENDERS, ""),
    ("author_name", "name\nInjected: yes", {}, REFUSED, "one line of printable text"),
    ("author_name", "", {}, REFUSED, "must not be empty"),
    ("author_name", "x" * 101, {}, REFUSED, "100 or fewer"),
    # author_email: TOML.
    ("author_email", "a@b.cd\n", {}, REFUSED, "is not a valid email address"),
    ("author_email", 'a"b@c.de', {}, REFUSED, "is not a valid email address"),
    ("author_email", "a@b", {}, REFUSED, "is not a valid email address"),
    ("author_email", "a b@c.de", {}, REFUSED, "is not a valid email address"),
    ("author_email", "<a@b.cd>", {}, REFUSED, "is not a valid email address"),
    ("author_email", "a@b.cd; rm -rf /", {}, REFUSED, "is not a valid email address"),
    ("author_email", "first.last+tag@sub.example.co.uk", {}, RENDERS, ""),
    # dvc_remote_url: .dvc/config, README, the answers file.
    ("dvc_remote_url", "s3://user:secret@host/bucket", S3, REFUSED, "must not contain a password"),
    ("dvc_remote_url", "s3://bucket/path\n", S3, REFUSED, "spaces or control characters"),
    ("dvc_remote_url", "s3://b/p; rm -rf /", S3, REFUSED, "spaces or control characters"),
    ("dvc_remote_url", "s3://bucket/x", {}, REFUSED, "dvc_remote is 'local'"),
    ("dvc_remote_url", "s3://bucket/$(id)/`id`", S3, RENDERS, ""),
    # Answers with choices.
    ("python_version", "3.9", {}, REFUSED, ""),
    ("license", "GPL-3.0", {}, REFUSED, ""),
    ("ci_providers", ["github", "circleci"], {}, REFUSED, ""),
    # Yes/no questions take only yes/no (Copier would cast any text to true).
    ("use_docker", "maybe", {}, REFUSED, "Invalid choice for 'use_docker'"),
    ("use_docker", "[true]", {}, REFUSED, "Invalid choice for 'use_docker'"),
    ("renovate", "sometimes", {}, REFUSED, "Invalid choice for 'renovate'"),
    ("batch_inference", "often", {}, REFUSED, "Invalid choice for 'batch_inference'"),
]


def _id(case: tuple) -> str:
    name, value, _extra, outcome, _fragment = case
    return f"{outcome}-{name}={str(value)[:24]!r}"


def test_the_corpus_is_large_and_covers_every_free_text_question():
    free_text = {"project_name", "project_slug", "package_name", "description", "author_name"}
    assert len(CORPUS) >= 60
    assert free_text | {"author_email", "dvc_remote_url"} <= {case[0] for case in CORPUS}


@pytest.mark.parametrize(
    ("name", "value", "extra", "fragment"),
    [pytest.param(c[0], c[1], c[2], c[4], id=_id(c)) for c in CORPUS if c[3] == REFUSED],
)
def test_refused_before_anything_is_written(name, value, extra, fragment, template_src, tmp_path):
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match=f"question '{name}'|Invalid choice") as error:
        render(template_src, dst, {**extra, name: value})
    assert fragment in str(error.value)
    assert not dst.exists() or not any(dst.iterdir()), "a refused answer must write nothing"


def _groups() -> list[dict]:
    """The accepted answers, packed into as few renders as possible (one value per question
    in each, with compatible extra answers)."""
    groups: list[dict] = []
    for name, value, extra, outcome, _ in CORPUS:
        if outcome != RENDERS:
            continue
        for group in groups:
            fits = name not in group and all(group.get(k, v) == v for k, v in extra.items())
            if fits:
                group.update({**extra, name: value})
                break
        else:
            groups.append({**extra, name: value})
    return groups


def _code_tokens(source: str) -> str:
    """The Python source without its string literals and comments."""
    literal = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", -1)}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return " ".join(token.string for token in tokens if token.type not in literal)


@pytest.mark.slow
@pytest.mark.parametrize("answers", _groups(), ids=lambda a: "-".join(sorted(a))[:60])
def test_accepted_answers_render_well_formed_and_inert(
    answers, template_src, tmp_path, offline_uv_env
):
    dst = render(template_src, tmp_path / "project", answers)
    python = [p for p in dst.rglob("*.py")]
    assert python
    for path in python:
        source = path.read_text(encoding="utf-8")
        compile(source, str(path), "exec")
        assert MARKER not in _code_tokens(source), f"an answer became code in {path}"
    assert_data_files_parse(dst)
    recorded = assert_answers_recorded(dst, answers)
    project = tomllib.loads((dst / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    if "description" in answers:
        assert project["description"] == answers["description"]
    if "author_name" in answers:
        assert project["authors"] == [
            {"name": answers["author_name"], "email": recorded["author_email"]}
        ]

    # The project's own lint, and its package imported: nothing an answer carries runs.
    def run(*command: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **offline_uv_env}  # PyTorch's CPU index, offline
        return subprocess.run(
            command, cwd=dst, env=env, capture_output=True, text=True, timeout=900
        )

    assert run("git", "init", "--quiet").returncode == 0
    assert run("git", "add", "--all").returncode == 0
    lint = run("uv", "run", "poe", "lint")
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    package = recorded["package_name"]
    imported = run("uv", "run", "python", "-c", f"import {package}, {package}.mlops.cli")
    assert imported.returncode == 0, imported.stderr[-3000:]
    ran = [p for p in (dst / MARKER, tmp_path / MARKER, Path.cwd() / MARKER) if p.exists()]
    assert not ran, f"an answer ran as code: {ran}"
