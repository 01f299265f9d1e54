"""The variants whose generated CI pipelines are run for real (`covering_variants`).

By default: the core set, each CI provider alone and all three together, chosen so that
together they cover every ML framework, tracking choice, a local and an S3 remote, serving on
and off, and Docker on and off. The other tests that generate projects (containers, the ML
lifecycle) use these same variants, so each is generated once per worker. This keeps the
suite within its time budget on a 2-core machine.

With `--all-pairs` (the template's own CI, sharded): the full pairwise covering set. Every
pair of choices of the structural questions appears in at least one variant (pairwise
covering via allpairspy), with each CI provider treated as an on/off factor so every provider
meets every other choice; each provider alone and all three together are always included.
Derived from copier.yml through tests.harness.matrix, so new questions or choices join it by
themselves.
"""

from __future__ import annotations

import os

import pytest
from allpairspy import AllPairs

from tests.harness.matrix import (
    QUESTIONS,
    STRUCTURAL,
    Variant,
    answer_space,
    asked,
    choice_values,
    rejected,
)

PROVIDERS = choice_values(QUESTIONS["ci_providers"])
OTHERS = [name for name in STRUCTURAL if name != "ci_providers"]
# The only PyTorch wheel this machine can install offline is for CPython 3.11 (see harness.render.s
# offline_uv_env), so PyTorch variants target 3.11; the others cycle through the versions.
PYTORCH_PYTHON = "3.11"


def _variant(providers: list[str], choices: dict, index: int) -> Variant:
    answers = {"ci_providers": tuple(providers), **choices}
    answers = {k: v for k, v in answers.items() if asked(k, answers)}
    versions = answer_space("python_version")
    answers["python_version"] = (
        PYTORCH_PYTHON
        if answers.get("ml_framework") == "pytorch"
        else versions[index % len(versions)]
    )
    return Variant(tuple(answers.items()))


# The core variants' answers unless a variant says otherwise, in the order their ids list them.
CORE_DEFAULTS = {
    "ml_framework": "sklearn",
    "dvc_remote": "local",
    "dvc_remote_url": None,  # only with a remote that needs one
    "experiment_tracking": "none",
    "serving": "none",
    "use_docker": False,
    "batch_inference": False,
    "python_version": "3.11",
}


def _core(providers: list[str], **answers) -> Variant:
    merged = {**CORE_DEFAULTS, **answers}
    chosen = [(name, merged[name]) for name in CORE_DEFAULTS if merged[name] is not None]
    return Variant((("ci_providers", tuple(providers)), *chosen))


# Each provider alone and all three together (see the module docstring). All three together
# also has the scheduled batch-scoring job: each provider's schedule tests run it.
ALL_PROVIDERS = _core(
    PROVIDERS,
    experiment_tracking="dvclive",
    serving="fastapi",
    use_docker=True,
    batch_inference=True,
)
GITHUB_ONLY = _core(["github"], python_version="3.12")
GITLAB_ONLY = _core(
    ["gitlab"],
    ml_framework="pytorch",
    experiment_tracking="dvclive",
    serving="fastapi",  # the API over a PyTorch model (without Docker: no deployment)
    python_version=PYTORCH_PYTHON,
)
JENKINS_ONLY = _core(
    ["jenkins"], dvc_remote="s3", dvc_remote_url="s3://bucket/project", experiment_tracking="mlflow"
)
CORE = [ALL_PROVIDERS, GITHUB_ONLY, GITLAB_ONLY, JENKINS_ONLY]
# Not a CI variant: MLflow's model registry behind a deployment (tests/test_deploy.py).
MLFLOW_DEPLOY = _core(["github"], experiment_tracking="mlflow", serving="fastapi", use_docker=True)


def covering_variants() -> list[Variant]:
    """The core set, or every pairwise variant too when TEMPLATE_TESTS_ALL_PAIRS is set."""
    if not os.environ.get("TEMPLATE_TESTS_ALL_PAIRS"):
        return list(CORE)
    pairwise = _pairwise_variants()
    return CORE + [v for v in pairwise if v not in CORE]


def _pairwise_variants() -> list[Variant]:
    factors = [[True, False]] * len(PROVIDERS) + [answer_space(name) for name in OTHERS]

    def allowed(row: list) -> bool:
        """At least one provider, and no combination a validator rejects."""
        if len(row) >= len(PROVIDERS) and not any(row[: len(PROVIDERS)]):
            return False
        return not rejected(dict(zip(OTHERS, row[len(PROVIDERS) :], strict=False)))

    rows = [list(row) for row in AllPairs(factors, filter_func=allowed)]
    defaults = [answer_space(name)[0] for name in OTHERS]
    for chosen in [[p] for p in PROVIDERS] + [PROVIDERS]:
        flags = [p in chosen for p in PROVIDERS]
        if not any(row[: len(PROVIDERS)] == flags for row in rows):
            rows.append(flags + defaults)
    result = []
    for index, row in enumerate(rows):
        providers = [p for p, on in zip(PROVIDERS, row[: len(PROVIDERS)], strict=True) if on]
        result.append(
            _variant(providers, dict(zip(OTHERS, row[len(PROVIDERS) :], strict=True)), index)
        )
    return result


def provider_variants(provider: str) -> list[Variant]:
    """The covering variants whose pipelines include this CI provider."""
    return [v for v in covering_variants() if provider in v.data["ci_providers"]]


def pick(candidates: list[Variant], *preferences) -> Variant:
    """The first candidate the first preference (a predicate on answers) accepts, else the
    first one the next accepts, ...; the first candidate when none does."""
    for prefer in preferences:
        for variant in candidates:
            if prefer(variant.data):
                return variant
    return candidates[0]


def param(variant: Variant, *extra: str):
    """A pytest parameter of the variant, on the worker that generates it (xdist_group)."""
    return pytest.param(
        variant,
        *extra,
        marks=pytest.mark.xdist_group(variant.id),
        id="-".join([variant.id, *extra]),
    )
