"""The render matrix, derived from copier.yml so it cannot drift from the questions.

Structural questions (those with choices, or booleans, that change which files are generated)
are combined so that every two values of any two of them meet in at least one render (a
pairwise covering set, about a thirtieth of the full product: the suite's budget);
`--full-matrix` combines them in full (the template's own sharded CI does). A multiselect
contributes every non-empty subset of its choices. Value-only questions only substitute text,
so their values are cycled across the renders to make every value appear without multiplying
the matrix; `--exhaustive` combines them too.
A question whose `when` is false for a combination is not asked, so it is left out of that
variant (Copier uses its default) and the combinations that differ only in it collapse.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from covertable import make as covering_array

from extensions import QuestionsExtension

COPIER_YML = Path(__file__).resolve().parents[2] / "copier.yml"
QUESTIONS: dict[str, dict[str, Any]] = {
    name: spec
    for name, spec in yaml.safe_load(COPIER_YML.read_text()).items()
    if not name.startswith("_")
}
# copier.yml's Jinja (when, defaults, validators) with the template's own functions, as Copier
# renders it (extensions.py).
JINJA = jinja2.Environment(extensions=[QuestionsExtension])
# Questions whose values only substitute into text (a version string, a licence text) or add
# one self-contained file (LICENSE, renovate.json) that nothing else refers to.
VALUE_ONLY = ("python_version", "license", "renovate")


def choice_values(spec: dict[str, Any]) -> list[Any]:
    if spec.get("type") == "bool":
        return [True, False]
    choices = spec.get("choices") or []
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def answer_space(name: str) -> list[Any]:
    spec = QUESTIONS[name]
    values = choice_values(spec)
    if spec.get("multiselect"):
        return [
            list(combo)
            for size in range(1, len(values) + 1)
            for combo in itertools.combinations(values, size)
        ]
    return values


STRUCTURAL = tuple(
    name for name, spec in QUESTIONS.items() if choice_values(spec) and name not in VALUE_ONLY
)


@dataclass(frozen=True)
class Variant:
    answers: tuple[tuple[str, Any], ...]

    @property
    def data(self) -> dict[str, Any]:
        return {
            name: list(value) if isinstance(value, tuple) else value for name, value in self.answers
        }

    @property
    def id(self) -> str:
        parts = []
        for name, value in self.answers:
            if name == "dvc_remote_url":  # implied by dvc_remote in every variant we name
                continue
            if isinstance(value, tuple):
                value = "+".join(value)
            parts.append(value if not isinstance(value, bool) else name if value else f"no_{name}")
        return "-".join(str(p) for p in parts)


def asked(name: str, answers: dict[str, Any]) -> bool:
    """Whether Copier asks the question given the other answers (its `when`)."""
    when = QUESTIONS[name].get("when", True)
    if not isinstance(when, str):
        return bool(when)
    rendered = JINJA.from_string(when).render(**answers)
    return rendered.strip().lower() in ("true", "1", "yes", "y", "on")


def effective_answer(answers: dict[str, Any], name: str) -> Any:
    """The answer a render with these answers gets: the given one, or the question's default."""
    if name in answers:
        return answers[name]
    default = QUESTIONS[name].get("default")
    if isinstance(default, str) and "{" in default:
        return JINJA.from_string(default).render(**answers)
    return default


def rejected(answers: dict[str, Any]) -> bool:
    """Whether a validator of one of these questions rejects this combination of answers."""
    for name in answers:
        validator = QUESTIONS[name].get("validator")
        if validator and JINJA.from_string(validator).render(**answers).strip():
            return True
    return False


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _asked_answers(names: list[str], combos) -> list[dict[str, Any]]:
    """The distinct answer sets Copier would record: unasked questions dropped (their `when`)."""
    result, seen = [], set()
    for combo in combos:
        answers = dict(zip(names, combo, strict=True))
        answers = {k: v for k, v in answers.items() if asked(k, answers)}
        key = tuple((k, _freeze(v)) for k, v in answers.items())
        if key not in seen:
            seen.add(key)
            result.append(answers)
    return result


def answer_pairs(answers: dict[str, Any]) -> set:
    """Every two answers of one render, as ((question, value), (question, value))."""
    return set(itertools.combinations(((k, _freeze(v)) for k, v in answers.items()), 2))


def _covering(names: list[str]) -> list[dict[str, Any]]:
    """Every two answers that render together in the full product, together at least once:
    covertable's greedy pairwise covering array (deterministic), then, because a question that
    is not asked drops out of a render, a variant of the full product for each pair still
    missing."""
    spaces = [answer_space(name) for name in names]
    chosen = _asked_answers(names, (tuple(row) for row in covering_array(spaces, strength=2)))
    covered = set().union(*map(answer_pairs, chosen))
    for answers in _asked_answers(names, itertools.product(*spaces)):
        if not answer_pairs(answers) <= covered:
            chosen.append(answers)
            covered |= answer_pairs(answers)
    return chosen


def variants(exhaustive: bool = False, full: bool = False) -> list[Variant]:
    names = list(STRUCTURAL) + (list(VALUE_ONLY) if exhaustive else [])
    if exhaustive or full:
        chosen = _asked_answers(names, itertools.product(*(answer_space(n) for n in names)))
    else:
        chosen = _covering(names)
    result = []
    for answers in chosen:
        if not exhaustive:
            # Cycle each value-only question at its own pace, so their values also pair up.
            stride = 1
            for name in VALUE_ONLY:
                space = answer_space(name)
                answers[name] = space[(len(result) // stride) % len(space)]
                stride *= len(space)
        result.append(Variant(tuple((k, _freeze(v)) for k, v in answers.items())))
    return result
