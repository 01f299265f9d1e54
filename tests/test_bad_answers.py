"""Bad answers: every validator rejects bad input with a message that says what is wrong and
what is expected, and a rejected answer writes nothing to the destination."""

from __future__ import annotations

import re
import subprocess
import sys

import copier
import pytest
import yaml

from tests.harness.matrix import QUESTIONS
from tests.harness.render import REPO_ROOT, render

# question -> (bad answers, extra answers the case needs, fragment the message must contain)
BAD_ANSWERS: dict[str, list[tuple[object, dict, str]]] = {
    "project_name": [("   ", {}, "must not be empty")],
    "project_slug": [
        ("My Model", {}, "lowercase letters, digits and single hyphens"),
        ("model-", {}, "not ending with a hyphen"),
        ("1model", {}, "starting with a letter"),
        ("my--model", {}, "single hyphens"),
    ],
    "package_name": [
        ("my-model", {}, "is not a valid Python identifier"),
        ("2fast", {}, "not starting with a digit"),
        ("class", {}, "is a Python keyword"),
        ("pandas", {}, "would shadow a module"),
    ],
    "description": [
        ("", {}, "must not be empty"),
        ("two\nlines", {}, "a single line of printable text"),
    ],
    "author_name": [
        ("", {}, "must not be empty"),
        ("Team\tA", {}, "one line of printable text"),
    ],
    "author_email": [
        ("not-an-email", {}, "is not a valid email address"),
        ("a@b", {}, "expected something like name@example.com"),
    ],
    "ci_providers": [([], {}, "choose at least one of github, gitlab, jenkins")],
    "deploy_target": [
        ("ssh", {"use_docker": False}, "needs use_docker=true and serving=fastapi, or choose none"),
        ("kubernetes", {"serving": "none"}, "deploys the API image"),
    ],
    "use_docker": [(1, {}, "use_docker is a yes/no question: answer yes or no")],
    "renovate": [(1, {}, "renovate is a yes/no question: answer yes or no")],
    "batch_inference": [(1, {}, "batch_inference is a yes/no question: answer yes or no")],
    "dvc_remote_url": [
        ("gs://bucket/path", {"dvc_remote": "s3"}, "does not match dvc_remote 's3'"),
        ("s3://", {"dvc_remote": "s3"}, "expected a URL like s3://bucket-or-host/path"),
        ("https://example.com/x", {"dvc_remote": "ssh"}, "expected a URL like ssh://"),
        ("azure://my container", {"dvc_remote": "azure"}, "must not contain spaces"),
    ],
}

CASES = [
    pytest.param(name, value, extra, fragment, id=f"{name}={value!r}")
    for name, cases in BAD_ANSWERS.items()
    for value, extra, fragment in cases
]


def test_every_validator_is_exercised():
    validated = {name for name, spec in QUESTIONS.items() if spec.get("validator")}
    assert validated == set(BAD_ANSWERS), "each validated question needs bad-input cases here"


@pytest.mark.parametrize(("name", "value", "extra", "fragment"), CASES)
def test_bad_answer_is_rejected_with_a_clear_message(
    name, value, extra, fragment, template_src, tmp_path
):
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match=f"Validation error for question '{name}'") as error:
        render(template_src, dst, {**extra, name: value})
    assert fragment in str(error.value)
    assert not dst.exists() or not any(dst.iterdir()), "a rejected answer must write nothing"


# Every single-choice question of copier.yml (a multiselect takes a list: see ci_providers above).
CHOICE_QUESTIONS = [
    name for name, spec in QUESTIONS.items() if spec.get("choices") and not spec.get("multiselect")
]


@pytest.mark.parametrize("name", CHOICE_QUESTIONS)
def test_answer_outside_the_choices_is_rejected(name, template_src, tmp_path):
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match="Invalid choice|Validation error"):
        render(template_src, dst, {name: "not-a-choice"})
    assert not dst.exists() or not any(dst.iterdir())


def test_good_non_default_answers_render(template_src, tmp_path):
    dst = render(
        template_src,
        tmp_path / "project",
        {
            "project_name": "Churn Model",
            "dvc_remote": "s3",
            "dvc_remote_url": "s3://models/churn",
            "author_email": "team@corp.example",
        },
    )
    assert (dst / "src" / "churn_model" / "mlops" / "cli.py").is_file()


def test_copier_api_is_the_one_tests_use():
    # The suite renders in-process; make sure the Copier it imports is the pinned major.
    assert copier.__version__.startswith("9.")


def yes_no_words() -> tuple[list[str], list[str]]:
    """docs/getting-started.md's yes/no sentence: the words it accepts (before "anything
    else"), and the words it says stop (in the parentheses after it)."""
    text = " ".join((REPO_ROOT / "docs" / "getting-started.md").read_text().split())
    sentence = re.search(r"Yes/no questions take (.*?anything else \(.*?\) stops)", text)
    assert sentence, "getting-started.md no longer says what yes/no questions take"
    accepted, refused = sentence.group(1).split("anything else")
    words = re.compile(r"`(?:--data use_docker=)?([a-z0-9]+)`")
    return words.findall(accepted), words.findall(refused)


def test_yes_no_answers_take_exactly_what_the_docs_say(template_src, tmp_path):
    """Through Copier's command line, as the docs write `--data use_docker=...`."""
    accepted, refused = yes_no_words()
    assert {"yes", "no", "true", "false"} <= set(accepted) and refused, (accepted, refused)
    copy = [sys.executable, "-m", "copier", "copy", "--trust", "--skip-tasks", "--defaults"]
    for word in accepted + refused:
        dst = tmp_path / word
        done = subprocess.run(
            [*copy, "--data", f"use_docker={word}", str(template_src), str(dst)],
            capture_output=True,
            text=True,
        )
        if word in refused:
            assert done.returncode != 0, f"use_docker={word} was accepted"
            assert "use_docker" in done.stderr.splitlines()[-1], done.stderr[-2000:]
            assert not dst.exists() or not any(dst.iterdir()), "a refused answer wrote files"
            continue
        assert done.returncode == 0, done.stderr[-2000:]
        recorded = yaml.safe_load((dst / ".copier-answers.yml").read_text())["use_docker"]
        assert recorded is (word in ("yes", "true", "on")), (word, recorded)
