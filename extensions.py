"""The Python side of copier.yml: answer validators and computed answers, as plain functions.

copier.yml keeps every question, its help and its choices; where a question needs more than a
line of logic it calls a function of this module instead of a Jinja if/elif chain:

- validators (`check_<question>`) return "" for a good answer, else the one-line message
  Copier shows (`Validation error for question 'NAME': MESSAGE`); the message names the
  question and says what is expected;
- computed answers: `slug_from_name`, `package_from_slug` (the defaults of project_slug and
  package_name), `python_string_literal` (project_name_literal), `dvc_secret_names`
  (dvc_secrets) and `deploy_settings_for` (deploy_settings);
- RESERVED_MODULE_NAMES: the import names package_name must not take.

`QuestionsExtension` hands them to Jinja: the functions as globals, the one-argument ones also
as filters. tests/test_extensions.py calls each function directly.

How Copier loads this file: copier.yml lists `copier_template_extensions.TemplateExtensionLoader`
(PyPI copier-template-extensions) and then `extensions.py:QuestionsExtension`; the loader
imports this file by its path in the template. A dotted import (`extensions.QuestionsExtension`)
needs no extra package but only works when the template directory happens to be on sys.path,
which Copier does not arrange: `copier copy --vcs-ref`, `update` and `recopy` render from a
temporary clone (Copier issue 2557), and with Copier 9.19.1 `copy --vcs-ref HEAD` stops with
"No module named 'extensions'" even when run from the template's directory: every command this
project documents would fail. Copier without the loader installed stops before asking
anything, with "Copier could not load some Jinja extensions: No module named
'copier_template_extensions'": the docs' commands all run Copier with it.

The module needs only the standard library and Jinja (which Copier brings).
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.exceptions import UndefinedError
from jinja2.ext import Extension

# Characters that would break a line of generated code or data: C0 and C1 controls (newline,
# tab, escape, ...) and the Unicode line and paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}"
)
MAX_SLUG, MAX_PACKAGE = 64, 32

KEYWORDS = frozenset(keyword.kwlist)
# Import names a package must not take (it would shadow them): Python's standard library
# (sys.stdlib_module_names of 3.10 to 3.13; tests/test_extensions.py keeps it complete) and the
# modules generated projects import.
_RESERVED = """
    abc aifc antigravity argparse array ast asynchat asyncio asyncore atexit audioop base64 bdb
    binascii binhex bisect builtins bz2 cProfile calendar cgi cgitb chunk cmath cmd code codecs
    codeop collections colorsys compileall concurrent configparser contextlib contextvars copy
    copyreg crypt csv ctypes curses dataclasses datetime dbm decimal difflib dis distutils
    doctest dvc dvclive email encodings ensurepip enum errno fastapi faulthandler fcntl filecmp
    fileinput fnmatch fractions ftplib functools gc genericpath getopt getpass gettext glob
    graphlib grp gzip hashlib heapq hmac html http httpx idlelib imaplib imghdr imp importlib
    inspect io ipaddress itertools joblib json keyword lib2to3 linecache locale logging lzma
    mailbox mailcap marshal math mimetypes mlflow mmap modulefinder msilib msvcrt
    multiprocessing netrc nis nntplib nt ntpath nturl2path numbers numpy opcode operator
    optparse os ossaudiodev pandas pandera pathlib pdb pickle pickletools pipes pkgutil platform
    plistlib poethepoet poplib posix posixpath pprint pre_commit profile pstats pty pwd
    py_compile pyclbr pydantic pydoc pydoc_data pyexpat pytest queue quopri random re readline
    reprlib resource rlcompleter ruff runpy sched scipy secrets select selectors shelve shlex
    shutil signal site sklearn smtpd smtplib sndhdr socket socketserver spwd sqlite3 src
    sre_compile sre_constants sre_parse ssl starlette stat statistics string stringprep struct
    subprocess sunau symtable sys sysconfig syslog tabnanny tarfile telnetlib tempfile termios
    test tests textwrap this threading time timeit tkinter token tokenize tomllib torch trace
    traceback tracemalloc tty turtle turtledemo types typing unicodedata unittest urllib uu
    uuid uvicorn venv warnings wave weakref webbrowser winreg winsound wsgiref xdrlib xml
    xmlrpc yaml zipapp zipfile zipimport zlib zoneinfo
    """
RESERVED_MODULE_NAMES = frozenset(_RESERVED.split())

DVC_SCHEMES = {"s3": "s3://", "gcs": "gs://", "azure": "azure://", "ssh": "ssh://"}
# The CI secret names that carry each DVC remote's credentials (read from the provider's secret
# store, never from files).
DVC_SECRETS: dict[str, list[str]] = {
    "local": [],
    "s3": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"],
    "gcs": ["GOOGLE_APPLICATION_CREDENTIALS"],
    "azure": ["AZURE_STORAGE_CONNECTION_STRING"],
    "ssh": ["DVC_SSH_PASSWORD"],
}
# The deployment settings every provider hands to `poe deploy` and `poe fetch-traffic`.
# `variables` are plain settings (the first one tells whether an environment is configured at
# all), `secrets` are read from the provider's secret store; `key` is the secret that carries
# the SSH key or kubeconfig (Jenkins binds it from the credential
# `<environment>-<key_credential>`). `api_secrets` are the deployed API's own (its optional API
# key): only the deploy step reads them, never monitoring.
DEPLOY_SETTINGS: dict[str, dict[str, Any]] = {
    "ssh": {
        "variables": [
            "DEPLOY_HOST",
            "DEPLOY_URL",
            "DEPLOY_SSH_PORT",
            "DEPLOY_DIR",
            "DEPLOY_PORT",
            "DEPLOY_SSH_KNOWN_HOSTS",
            "DEPLOY_REGISTRY_USER",
            "PREDICTION_LOG_SAMPLE_RATE",
            "PREDICTION_LOG_RETENTION_DAYS",
            "PREDICTION_LOG_MAX_BYTES_PER_DAY",
        ],
        "secrets": ["DEPLOY_SSH_KEY", "DEPLOY_REGISTRY_PASSWORD"],
        "key": "DEPLOY_SSH_KEY",
        "key_credential": "deploy-ssh-key",
        "api_secrets": ["API_KEY"],
    },
    "kubernetes": {
        "variables": ["DEPLOY_URL"],
        "secrets": ["KUBE_CONFIG"],
        "key": "KUBE_CONFIG",
        "key_credential": "kubeconfig",
        "api_secrets": ["API_KEY"],
    },
    "none": {"variables": [], "secrets": [], "api_secrets": []},
}

RENAME_SLUG = (
    "project_slug cannot change from '{old}' to '{new}' through copier update or recopy "
    '(nothing was changed): rename by hand as docs/updating.md says under "Renaming" (replace '
    "the slug in pyproject.toml and .copier-answers.yml, commit, `copier recopy`, `uv lock`, "
    "`uv run poe ci`)."
)
RENAME_PACKAGE = (
    "package_name cannot change from '{old}' to '{new}' through copier update or recopy "
    "(nothing was changed): Copier would move only the template's modules of src/{old}, not "
    'yours. Rename by hand as docs/updating.md says under "Renaming" (`git mv src/{old} '
    "src/{new}`, replace the name in every file, package_name in .copier-answers.yml included, "
    "`uv run poe ci`)."
)


def shorten(text: str, length: int = 80) -> str:
    """An answer quoted in a message, cut at a word with "..." when it is much longer than
    `length` (as Jinja's `truncate(length)` does, so the messages read as they always have)."""
    if len(text) <= length + 5:
        return text
    return text[: length - 3].rsplit(" ", 1)[0] + "..."


ONE_LINE = "of printable text (no newlines, tabs or control characters)."


def check_project_name(name: str) -> str:
    if not name.strip():
        return (
            "project_name must not be empty: give a short human-readable name such as "
            '"Churn Model".'
        )
    if CONTROL.search(name):
        return f"project_name must be one line {ONE_LINE}"
    if len(name) > 80:
        return f"project_name is {len(name)} characters long: keep it to 80 or fewer."
    return ""


def check_description(description: str) -> str:
    if not description.strip():
        return "description must not be empty: one line saying what the model predicts."
    if CONTROL.search(description):
        return f"description must be a single line {ONE_LINE}"
    if len(description) > 300:
        return (
            f"description is {len(description)} characters long: keep it to one line of 300 "
            "or fewer."
        )
    return ""


def check_author_name(author: str) -> str:
    if not author.strip():
        return "author_name must not be empty."
    if CONTROL.search(author):
        return f"author_name must be one line {ONE_LINE}"
    if len(author) > 100:
        return f"author_name is {len(author)} characters long: keep it to 100 or fewer."
    return ""


def check_author_email(email: str) -> str:
    if EMAIL.fullmatch(email) and len(email) <= 254:
        return ""
    return (
        f"author_email '{shorten(email)}' is not a valid email address: expected something like "
        "name@example.com (letters, digits and . _ % + - before the @, a domain after it)."
    )


def check_yes_no(answer: Any, question: str) -> str:
    """Yes/no questions take a boolean: `yes`/`no` or `true`/`false` (YAML reads `on`/`off` as
    the same two). A number is refused: Copier's choice check would take 1 for `yes`, since
    1 == True in Python, and record it as 1."""
    if answer is True or answer is False:
        return ""
    return f"{question} is a yes/no question: answer yes or no (true or false), not '{answer}'."


def previous_answer(
    name: str, copier_conf: Mapping[str, Any], external_data: Mapping[str, Any]
) -> Any:
    """The answer recorded in the destination's answers file (update, recopy), or None on a
    first copy. copier.yml's `_external_data.previous` reads that file; it is read only when it
    exists."""
    answers_file = Path(str(copier_conf["dst_path"]), str(copier_conf["answers_file"]))
    if not answers_file.is_file():
        return None
    return (external_data.get("previous") or {}).get(name)


def check_project_slug(
    slug: str, copier_conf: Mapping[str, Any], external_data: Mapping[str, Any]
) -> str:
    if not SLUG.fullmatch(slug):
        return (
            f"project_slug '{shorten(slug)}' is invalid: use lowercase letters, digits and "
            "single hyphens, starting with a letter and not ending with a hyphen "
            "(e.g. churn-model)."
        )
    if len(slug) > MAX_SLUG:
        return f"project_slug is {len(slug)} characters long: keep it to {MAX_SLUG} or fewer."
    old = previous_answer("project_slug", copier_conf, external_data)
    if old is not None and old != slug:
        return RENAME_SLUG.format(old=old, new=slug)
    return ""


def check_package_name(
    package: str, copier_conf: Mapping[str, Any], external_data: Mapping[str, Any]
) -> str:
    if not PACKAGE.fullmatch(package):
        return (
            f"package_name '{shorten(package)}' is not a valid Python identifier: use lowercase "
            "letters, digits and underscores, not starting with a digit (e.g. churn_model)."
        )
    if len(package) > MAX_PACKAGE:
        return f"package_name is {len(package)} characters long: keep it to {MAX_PACKAGE} or fewer."
    if package in KEYWORDS:
        return (
            f"package_name '{package}' is a Python keyword and cannot be imported: choose "
            f"another name (e.g. {package}_model)."
        )
    if package in RESERVED_MODULE_NAMES:
        return (
            f"package_name '{package}' would shadow a module of Python's standard library or of "
            f"the project's dependencies: choose another name (e.g. {package}_model)."
        )
    old = previous_answer("package_name", copier_conf, external_data)
    if old is not None and old != package:
        return RENAME_PACKAGE.format(old=old, new=package)
    return ""


def check_dvc_remote_url(url: str, dvc_remote: str) -> str:
    if dvc_remote == "local":
        return (
            "dvc_remote_url is only used with a cloud or SSH remote, and dvc_remote is 'local' "
            "(a directory on this machine): drop dvc_remote_url, or choose dvc_remote s3, gcs, "
            "azure or ssh."
        )
    scheme = DVC_SCHEMES[dvc_remote]
    if re.search(r"[\s\x00-\x1f\x7f-\x9f]", url):
        return "dvc_remote_url must not contain spaces or control characters."
    if not url.startswith(scheme) or len(url) <= len(scheme):
        return (
            f"dvc_remote_url '{shorten(url)}' does not match dvc_remote '{dvc_remote}': expected "
            f"a URL like {scheme}bucket-or-host/path."
        )
    if re.match(r"[a-z0-9]+://[^/@]*:[^/@]*@", url):
        return (
            "dvc_remote_url must not contain a password (user:password@): it would be written "
            "into the repository; give DVC the credentials through the environment or CI "
            "secrets (see the README)."
        )
    return ""


@pass_context
def check_destination(context) -> str:
    """A first `copier copy` into a directory that already holds files the template would
    write (a repository made by hand, with cookiecutter or cruft) stops before Copier writes
    anything, naming `fleet adopt`, which merges instead of overwriting. Files the template
    leaves to the team (_skip_if_exists), other files, and updates and recopies (the answers
    file is there) pass. Called from a computed answer's default (copier.yml
    `destination_checked`): Copier renders that even with --defaults, where it validates
    nothing; the error is raised as Jinja's UndefinedError, which Copier shows as its message.
    """
    conf = context["_copier_conf"]
    dst = Path(str(conf["dst_path"]))
    if not dst.is_dir() or (dst / str(conf["answers_file"])).is_file():
        return ""
    environment, answers = context.environment, context.get_all()
    source = Path(str(conf["src_path"]), "template")  # copier.yml's _subdirectory
    globs = [*(answers.get("team_owned") or []), *conf["skip_if_exists"]]
    kept = [environment.from_string(glob).render(answers) for glob in globs]
    conflicts = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).parts
        parts = [environment.from_string(part).render(answers) for part in relative]
        parts[-1] = parts[-1].removesuffix(".jinja")  # copier.yml's _templates_suffix
        if not path.is_file() or not all(parts):
            continue  # a name that renders empty is not written
        name = "/".join(parts)
        if (dst / name).exists() and not _matches(name, kept):
            conflicts.append(name)
    if not conflicts:
        return ""
    shown = ", ".join(conflicts[:8]) + (f" and {len(conflicts) - 8} more" if conflicts[8:] else "")
    raise UndefinedError(
        f"{dst} already holds files this template writes ({shown}): nothing was written. To "
        f"bring an existing repository under the template without losing them, run `uv run "
        f"fleet adopt {dst}` from a checkout of the template (docs/platform-teams.md, "
        '"Adopting existing repositories").'
    )


def _matches(path: str, globs: list[str]) -> bool:
    """Whether gitignore-style globs (Copier's _skip_if_exists) select the path."""
    import pathspec  # Copier's own dependency: present wherever Copier runs

    return pathspec.PathSpec.from_lines("gitwildmatch", globs).match_file(path)


def slug_from_name(name: str) -> str:
    """project_slug's default: the name lowercased, each run of other characters one hyphen,
    at most 64 characters, no hyphen at either end ("My Model!" -> "my-model")."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    return slug[:MAX_SLUG].rstrip("-")


def package_from_slug(slug: str) -> str:
    """package_name's default: the slug with underscores, at most 32 characters, no trailing
    underscore ("my-model" -> "my_model")."""
    return slug.replace("-", "_")[:MAX_PACKAGE].rstrip("_")


def python_string_literal(text: str) -> str:
    """`text` as a Python string literal quoted as ruff formats it: double quotes, unless it
    holds more double than single quotes. Generated code stays lint-clean and the text can
    never become code."""
    if text.count('"') > text.count("'"):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(text, ensure_ascii=False)


def dvc_secret_names(dvc_remote: str) -> list[str]:
    return list(DVC_SECRETS[dvc_remote])


def deploy_settings_for(deploy_target: str) -> dict[str, Any]:
    return json.loads(json.dumps(DEPLOY_SETTINGS[deploy_target]))  # a copy


VALIDATORS = (
    check_project_name,
    check_project_slug,
    check_package_name,
    check_description,
    check_author_name,
    check_author_email,
    check_dvc_remote_url,
    check_yes_no,
    check_destination,
)
COMPUTED = (
    slug_from_name,
    package_from_slug,
    python_string_literal,
    dvc_secret_names,
    deploy_settings_for,
)


class QuestionsExtension(Extension):
    """Adds the validators and computed answers to Copier's Jinja environment: every function
    as a global (`{{ check_project_name(project_name) }}`), the computed ones also as filters
    (`{{ project_name | slug_from_name }}`)."""

    def __init__(self, environment):
        super().__init__(environment)
        for function in VALIDATORS + COMPUTED:
            environment.globals[function.__name__] = function
        for function in COMPUTED:
            environment.filters[function.__name__] = function
