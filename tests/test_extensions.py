"""extensions.py, called directly: each validator's good and bad answers with the message it
gives, the rename checks of update and recopy, and the computed answers; then how Copier loads
the module (from a clone of a release, and the message without the loader).
tests/test_bad_answers.py and tests/test_hostile_answers.py render through Copier with it."""

from __future__ import annotations

import ast
import random
import re
import string
import subprocess
import sys

import jinja2
import pytest
import yaml

import extensions as ext
from tests.harness.matrix import COPIER_YML, QUESTIONS
from tests.harness.render import render

ONE_LINE = "(no newlines, tabs or control characters)."
VALIDATORS = {
    "project_name": ext.check_project_name,
    "description": ext.check_description,
    "author_name": ext.check_author_name,
    "author_email": ext.check_author_email,
}
GOOD = {
    "project_name": ["My Model", 'It\'s "quoted"', "Modèle 🚀", "A" * 80],
    "description": ["Predicts churn.", "x" * 300, "emoji 🚀 ∑"],
    "author_name": ["ML Team", "O'Reilly \\ Co", "x" * 100],
    "author_email": ["ml-team@example.com", "first.last+tag@sub.example.co.uk", "a_b%c@x-y.io"],
}
# question -> (bad answer, the whole message)
BAD = {
    "project_name": [
        (
            "   ",
            "project_name must not be empty: give a short human-readable name such as "
            '"Churn Model".',
        ),
        ("two\nlines", f"project_name must be one line of printable text {ONE_LINE}"),
        ("sep\u2028x", f"project_name must be one line of printable text {ONE_LINE}"),
        ("c1\x85", f"project_name must be one line of printable text {ONE_LINE}"),
        ("A" * 81, "project_name is 81 characters long: keep it to 80 or fewer."),
    ],
    "description": [
        ("", "description must not be empty: one line saying what the model predicts."),
        ("\x07bell", f"description must be a single line of printable text {ONE_LINE}"),
        ("x" * 301, "description is 301 characters long: keep it to one line of 300 or fewer."),
    ],
    "author_name": [
        (" ", "author_name must not be empty."),
        ("Team\tA", f"author_name must be one line of printable text {ONE_LINE}"),
        ("x" * 101, "author_name is 101 characters long: keep it to 100 or fewer."),
    ],
    "author_email": [
        (
            value,
            f"author_email '{value}' is not a valid email address: expected something like "
            "name@example.com (letters, digits and . _ % + - before the @, a domain after it).",
        )
        for value in ["a@b", "a b@c.de", "<a@b.cd>", "a@b.cd\n", 'a"b@c.de', "a@-b.cd", "@b.cd"]
    ],
}


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in GOOD.items() for value in values]
)
def test_good_answer_passes(name, value):
    assert VALIDATORS[name](value) == ""


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [(name, value, message) for name, cases in BAD.items() for value, message in cases],
)
def test_bad_answer_gets_its_message(name, value, message):
    assert VALIDATORS[name](value) == message
    assert message.startswith(name + " ")  # Copier prints it after the question's name too


@pytest.mark.parametrize("answer", [True, False])
def test_a_yes_no_answer_is_a_boolean(answer):
    assert ext.check_yes_no(answer, "use_docker") == ""


@pytest.mark.parametrize("answer", [1, 0, "y", None])
def test_a_yes_no_answer_that_is_not_a_boolean_is_refused(answer):
    message = ext.check_yes_no(answer, "renovate")
    assert (
        message
        == f"renovate is a yes/no question: answer yes or no (true or false), not '{answer}'."
    )


def test_a_long_answer_is_quoted_shortened_at_a_word():
    message = ext.check_author_email("word " * 40)
    quoted = re.search(r"'(.*)'", message).group(1)
    assert quoted.endswith("...") and len(quoted) <= 80 and "word word" in quoted
    assert ext.shorten("x" * 85) == "x" * 85  # a little over 80 is quoted whole
    assert ext.check_author_email("a" * 250 + "@b.cd").startswith("author_email 'aaa")


NO_ANSWERS_FILE = {"previous": {}}


def _conf(tmp_path, answers: dict | None):
    """_copier_conf and _external_data as Copier gives them: the destination's answers file
    exists (update, recopy) when answers is not None."""
    if answers is not None:
        (tmp_path / ".copier-answers.yml").write_text(yaml.safe_dump(answers))
    return {"dst_path": tmp_path, "answers_file": ".copier-answers.yml"}, {"previous": answers}


@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("churn-model", ""),
        ("m", ""),
        ("a" * 64, ""),
        ("My Model", "is invalid: use lowercase letters, digits and single hyphens"),
        ("model-", "not ending with a hyphen"),
        ("my--model", "single hyphens"),
        ("1model", "starting with a letter"),
        ("my_model", "is invalid"),
        ("my-model\n", "is invalid"),
        ("", "is invalid"),
        ("a" * 65, "project_slug is 65 characters long: keep it to 64 or fewer."),
    ],
)
def test_project_slug(slug, fragment, tmp_path):
    message = ext.check_project_slug(slug, *_conf(tmp_path, None))
    assert (fragment in message) if fragment else message == ""
    assert not message or message.startswith("project_slug ")


@pytest.mark.parametrize(
    ("package", "fragment"),
    [
        ("churn_model", ""),
        ("_private", ""),
        ("p" * 32, ""),
        ("my-model", "is not a valid Python identifier"),
        ("2fast", "not starting with a digit"),
        ("Model", "is not a valid Python identifier"),
        ("modèle", "is not a valid Python identifier"),
        ("a" * 33, "package_name is 33 characters long: keep it to 32 or fewer."),
        (
            "class",
            "'class' is a Python keyword and cannot be imported: choose another name "
            "(e.g. class_model).",
        ),
        ("async", "is a Python keyword"),
        (
            "pandas",
            "'pandas' would shadow a module of Python's standard library or of the "
            "project's dependencies",
        ),
        ("json", "would shadow a module"),
        ("tests", "would shadow a module"),
    ],
)
def test_package_name(package, fragment, tmp_path):
    message = ext.check_package_name(package, *_conf(tmp_path, None))
    assert (fragment in message) if fragment else message == ""


def test_reserved_module_names_cover_the_standard_library():
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    missing = stdlib - ext.RESERVED_MODULE_NAMES
    assert not missing, f"add to RESERVED_MODULE_NAMES in extensions.py: {sorted(missing)}"


def test_a_rename_through_update_or_recopy_is_refused(tmp_path):
    conf = _conf(tmp_path, {"project_slug": "churn-model", "package_name": "churn_model"})
    assert ext.check_project_slug("churn-model", *conf) == ""
    assert ext.check_package_name("churn_model", *conf) == ""
    assert ext.check_project_slug("new-model", *conf) == (
        "project_slug cannot change from 'churn-model' to 'new-model' through copier update or "
        'recopy (nothing was changed): rename by hand as docs/updating.md says under "Renaming" '
        "(replace the slug in pyproject.toml and .copier-answers.yml, commit, `copier recopy`, "
        "`uv lock`, `uv run poe ci`)."
    )
    message = ext.check_package_name("new_model", *conf)
    assert message.startswith("package_name cannot change from 'churn_model' to 'new_model'")
    assert "`git mv src/churn_model src/new_model`" in message


def test_a_first_copy_or_an_answers_file_without_the_answer_allows_any_name(tmp_path):
    # No answers file: whatever _external_data holds is not read.
    stale = {"previous": {"project_slug": "old", "package_name": "old"}}
    conf = {"dst_path": tmp_path, "answers_file": ".copier-answers.yml"}
    assert ext.check_project_slug("new-model", conf, stale) == ""
    assert ext.check_package_name("new_model", conf, stale) == ""
    conf, external = _conf(tmp_path, {"_commit": "v1.0.0"})
    assert ext.check_package_name("new_model", conf, external) == ""


@pytest.mark.parametrize(
    ("url", "remote", "message"),
    [
        ("s3://bucket/path", "s3", ""),
        ("gs://bucket/path", "gcs", ""),
        ("azure://container/path", "azure", ""),
        ("ssh://dvc@host/srv/dvc", "ssh", ""),
        ("s3://bucket/$(id)/`id`", "s3", ""),
        (
            "s3://bucket/x",
            "local",
            "dvc_remote_url is only used with a cloud or SSH remote, and "
            "dvc_remote is 'local' (a directory on this machine): drop dvc_remote_url, or choose "
            "dvc_remote s3, gcs, azure or ssh.",
        ),
        (
            "azure://my container",
            "azure",
            "dvc_remote_url must not contain spaces or control characters.",
        ),
        ("s3://b/p\n", "s3", "dvc_remote_url must not contain spaces or control characters."),
        (
            "gs://bucket/path",
            "s3",
            "dvc_remote_url 'gs://bucket/path' does not match dvc_remote "
            "'s3': expected a URL like s3://bucket-or-host/path.",
        ),
        (
            "s3://",
            "s3",
            "dvc_remote_url 's3://' does not match dvc_remote 's3': expected a URL "
            "like s3://bucket-or-host/path.",
        ),
        (
            "s3://user:secret@host/bucket",
            "s3",
            "dvc_remote_url must not contain a password "
            "(user:password@): it would be written into the repository; give DVC the credentials "
            "through the environment or CI secrets (see the README).",
        ),
    ],
)
def test_dvc_remote_url(url, remote, message):
    assert ext.check_dvc_remote_url(url, remote) == message


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("My Model", "my-model", "my_model"),
        ("  Churn -- Model!! ", "churn-model", "churn_model"),
        ("Modèle d'été 🚀", "mod-le-d-t", "mod_le_d_t"),
        ("名前のモデル", "", ""),
        ("A" * 66, "a" * 64, "a" * 32),  # Jinja's truncate kept up to 69: an invalid default
        ("x" * 63 + " y", "x" * 63, "x" * 32),  # cut at 64 ("...x-y" -> "...x-"): no end hyphen
    ],
)
def test_slug_and_package_defaults(name, slug, package):
    assert ext.slug_from_name(name) == slug
    assert ext.package_from_slug(slug) == package


def test_defaults_derived_from_a_valid_name_are_valid(tmp_path):
    """Every project_name the validator accepts, and that has a letter to start from, gives a
    slug and a package name their validators accept."""
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + " -_.'\"!é🚀"
    conf = _conf(tmp_path, None)
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(2000)]
    names += ["A" + "b" * n for n in range(60, 80)] + ["a-" * 40, "ab " * 26]
    checked = 0
    for name in names:
        slug = ext.slug_from_name(name)
        if ext.check_project_name(name) or not slug[:1].isalpha():
            continue
        assert ext.check_project_slug(slug, *conf) == "", (name, slug)
        package = ext.package_from_slug(slug)
        if package in ext.KEYWORDS or package in ext.RESERVED_MODULE_NAMES:
            continue
        assert ext.check_package_name(package, *conf) == "", (name, package)
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize(
    ("name", "literal"),
    [
        ("My Model", '"My Model"'),
        ("It's O'Brien's", "\"It's O'Brien's\""),
        ('My "quoted" Model', "'My \"quoted\" Model'"),
        ('"""; x #', '\'"""; x #\''),
        ('back\\slash \'a\' "b" "c"', "'back\\\\slash \\'a\\' \"b\" \"c\"'"),
        ("Modèle 🚀", '"Modèle 🚀"'),
    ],
)
def test_python_string_literal(name, literal):
    assert ext.python_string_literal(name) == literal
    assert ast.literal_eval(literal) == name


def test_ci_secret_and_deploy_settings():
    assert ext.dvc_secret_names("local") == []
    assert ext.dvc_secret_names("s3") == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
    ]
    assert set(ext.DVC_SECRETS) == set(ext.DVC_SCHEMES) | {"local"}
    ssh = ext.deploy_settings_for("ssh")
    assert ssh["variables"][0] == "DEPLOY_HOST" and ssh["key"] in ssh["secrets"]
    assert ext.deploy_settings_for("kubernetes")["key_credential"] == "kubeconfig"
    assert ext.deploy_settings_for("none") == {"variables": [], "secrets": [], "api_secrets": []}
    ssh["variables"].clear()  # a copy: the next render gets the full list
    assert ext.deploy_settings_for("ssh")["variables"]


def test_choices_of_copier_yml_are_the_keys_here():
    def values(name):
        return set(QUESTIONS[name]["choices"].values())

    assert values("dvc_remote") == set(ext.DVC_SECRETS)
    assert values("deploy_target") == set(ext.DEPLOY_SETTINGS)


def test_copier_yml_calls_every_function_and_only_these():
    text = COPIER_YML.read_text()
    settings = yaml.safe_load(text)["_jinja_extensions"]
    assert settings == [
        "copier_template_extensions.TemplateExtensionLoader",
        "extensions.py:QuestionsExtension",
    ]
    env = jinja2.Environment(extensions=[ext.QuestionsExtension])
    provided = {f.__name__ for f in ext.VALIDATORS + ext.COMPUTED}
    called = set(
        re.findall(
            r"\b(check_\w+|\w+_for|\w+_from_\w+|python_string_literal|"
            r"dvc_secret_names)\b",
            text,
        )
    )
    assert called == provided
    assert provided <= set(env.globals) and {f.__name__ for f in ext.COMPUTED} <= set(env.filters)
    for name in VALIDATORS:
        assert QUESTIONS[name]["validator"] == f"{{{{ check_{name}({name}) }}}}"


def test_validators_render_in_jinja_as_copier_calls_them(tmp_path):
    """copier.yml's own validator strings, rendered: empty for a good answer, the message for
    a bad one (Copier shows any non-empty result as the error)."""
    env = jinja2.Environment(extensions=[ext.QuestionsExtension])
    conf, external = _conf(tmp_path, {"package_name": "churn_model"})
    context = {"_copier_conf": conf, "_external_data": external, "dvc_remote": "s3"}

    def render(name, value):
        return env.from_string(QUESTIONS[name]["validator"]).render(**context, **{name: value})

    assert render("package_name", "churn_model") == ""
    assert "cannot change from 'churn_model' to 'x_model'" in render("package_name", "x_model")
    assert render("dvc_remote_url", "s3://b/p") == ""
    assert "must not contain a password" in render("dvc_remote_url", "s3://u:p@b/p")
    assert render("project_name", "two\nlines").startswith("project_name must be one line")
    default = env.from_string(QUESTIONS["project_name_literal"]["default"])
    assert default.render(project_name='say "hi"') == "'say \"hi\"'"


def test_copier_loads_the_module_from_a_clone_of_a_release(template_releases, tmp_path):
    """`copy --vcs-ref` (and update, recopy) render from a temporary clone that is not on
    sys.path: the loader still finds extensions.py there, its validators refuse and its
    computed answers render."""
    with pytest.raises(ValueError, match="question 'package_name'.*is a Python keyword"):
        render(template_releases, tmp_path / "refused", {"package_name": "class"}, vcs_ref="v2.0.0")
    dst = render(
        template_releases, tmp_path / "project", {"project_name": "Churn Model"}, vcs_ref="v2.0.0"
    )
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "churn_model" and answers["project_slug"] == "churn-model"


# Copier in a fresh process where copier_template_extensions cannot be imported, as after
# `uvx copier ...` without `--with copier-template-extensions`.
WITHOUT_LOADER = """
import sys
import copier

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "copier_template_extensions":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
copier.run_copy(sys.argv[1], sys.argv[2], defaults=True, unsafe=True, skip_tasks=True)
"""


def test_copier_without_the_loader_stops_naming_it(template_src, tmp_path):
    dst = tmp_path / "project"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LOADER, str(template_src), str(dst)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Copier could not load some Jinja extensions" in result.stderr
    assert "No module named 'copier_template_extensions'" in result.stderr
    assert not dst.exists() or not any(dst.iterdir())
