"""The distinct renderings of one CI provider's files, discovered from copier.yml.

Which answers shape a provider's files is derived by rendering, not assumed: starting from the
defaults with ci_providers=[provider], each question with choices is varied on its own; the
structural questions that change any of the provider's files are then combined in full, and the
renderings are deduplicated by content. Value-only questions (matrix.VALUE_ONLY: a version
string, a licence) are cycled across those combinations as the render matrix does, besides
their own variations, so every value appears without multiplying the renderings. Only the
provider's files are rendered (Copier's exclude), so this is quick.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from tests.harness.matrix import (
    QUESTIONS,
    VALUE_ONLY,
    answer_space,
    asked,
    choice_values,
    rejected,
)
from tests.harness.render import render

# Each provider's files, as paths (directories end with "/") relative to a generated project.
PROVIDER_FILES = {
    "github": ".github/",
    "gitlab": ".gitlab-ci.yml",
    "jenkins": "Jenkinsfile",
}


@dataclass(frozen=True)
class Rendering:
    answers: dict  # one combination of answers that renders these files
    directory: Path  # the render (only the provider's files)
    files: dict[str, str]  # path relative to directory -> content


def _render_provider_files(template: Path, dst: Path, answers: dict, provider: str) -> dict:
    path = PROVIDER_FILES[provider]
    if path.endswith("/"):
        exclude = ["*", f"!{path.rstrip('/')}", f"!{path}**"]
    else:
        exclude = ["*", f"!{path}"]
    render(template, dst, answers, exclude=exclude)
    found = sorted(p for p in dst.rglob("*") if p.is_file())
    return {str(p.relative_to(dst)): p.read_text() for p in found}


def distinct_renderings(
    template: Path, root: Path, provider: str, cycle_values: bool = True
) -> list[Rendering]:
    """Every distinct rendering of the provider's files, rendered under root. With
    cycle_values=False the value-only answers are varied only on their own, not across the
    structural combinations: for checks that cost seconds a file and that a version string in
    a comment cannot change (parsing and linting the Jenkinsfile)."""
    counter = itertools.count()
    done: dict[tuple, Rendering] = {}

    def rendering(answers: dict) -> Rendering:
        frozen = tuple(sorted((k, str(v)) for k, v in answers.items()))
        if frozen not in done:
            directory = root / f"r{next(counter)}"
            files = _render_provider_files(template, directory, answers, provider)
            done[frozen] = Rendering(answers, directory, files)
        return done[frozen]

    def space(name: str) -> list:
        values = answer_space(name)
        if name == "ci_providers":  # the provider's files exist only with it among them
            values = [v for v in values if provider in v]
        return values

    base = {"ci_providers": [provider]}
    reference = rendering(base).files
    assert reference, f"nothing rendered for {provider} with ci_providers=[{provider}]"
    relevant = [
        name
        for name, spec in QUESTIONS.items()
        if choice_values(spec)
        and any(rendering({**base, name: value}).files != reference for value in space(name))
    ]
    structural = [name for name in relevant if name not in VALUE_ONLY]
    cycled = [name for name in relevant if name in VALUE_ONLY]
    candidates = [rendering({**base, name: value}) for name in cycled for value in space(name)]
    for index, combo in enumerate(itertools.product(*(space(name) for name in structural))):
        answers = {**base, **dict(zip(structural, combo, strict=True))}
        stride = 1
        for name in cycled if cycle_values else []:  # each at its own pace, as matrix.variants
            answers[name] = space(name)[(index // stride) % len(space(name))]
            stride *= len(space(name))
        answers = {k: v for k, v in answers.items() if asked(k, answers)}
        if not rejected(answers):  # a combination the questions' validators refuse
            candidates.append(rendering(answers))
    distinct: dict[str, Rendering] = {}
    for found in candidates:
        distinct.setdefault(repr(sorted(found.files.items())), found)
    print(
        f"{provider} files depend on {relevant or 'no answer'}: {len(distinct)} distinct "
        f"renderings out of {len(done)} rendered"
    )
    return list(distinct.values())
