"""The model registry: which versions of the model exist, and which stage each one holds.

`register` records the committed model (dvc.lock, reports/metrics.json) as a version named by
its release tag (v1.2.0), `promote` gives a version a stage (`production`, `staging`: one per
deployment environment; giving the stage back to an earlier version is the rollback), and
`versions` lists each version with its stages, held-out metrics and data version. A stage is
held by one version at a time.

The back-end (cli.py picks it by experiment_tracking): with MLflow, MLflow's model registry (a
stage is an alias of the registered model; its module is generated only with that answer);
otherwise GTO, DVC's model registry, whose versions and stages are git tags (`model@v1.2.0`,
`model#production#3`; registry_gto.py).
"""

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .config import DVC_LOCK, METRICS_FILE, MODEL_PATH, RAW_DATA
from .release import lock_md5s

VERSION = re.compile(r"^v\d+\.\d+\.\d+$")  # GTO's (semantic) versions; the release tags
STAGE = re.compile(r"^[a-z][a-z0-9-]*$")
# Files whose committed state is the version registered: the model's md5 and the data version
# (dvc.lock), and its metrics.
RECORDED = (DVC_LOCK, METRICS_FILE)


class RegistryError(ValueError):
    """A registry operation was refused; the message says why. Nothing was changed."""


@dataclass
class ModelVersion:
    version: str
    stages: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_version: str = ""  # the raw data's md5 in dvc.lock
    model_md5: str = ""
    commit: str = ""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RegistryError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def file_md5(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def committed_model(version: str) -> ModelVersion:
    """The workspace's model as version, refused unless what records it is committed: a
    version names a commit, and `git checkout` of it must give back this model."""
    if not VERSION.match(version or ""):
        raise RegistryError(f"version {version!r}: expected a release tag such as v1.2.0")
    if changed := git("status", "--porcelain", "--", *map(str, RECORDED)):
        raise RegistryError(f"commit these first, the version is their commit:\n{changed}")
    if not MODEL_PATH.is_file():
        raise RegistryError(f"{MODEL_PATH}: no model (run `poe pipeline` first)")
    outputs = lock_md5s(DVC_LOCK)
    model_md5 = file_md5(MODEL_PATH)
    if outputs.get(str(MODEL_PATH)) != model_md5:
        raise RegistryError(f"{MODEL_PATH} is not the model dvc.lock records (run `poe pipeline`)")
    return ModelVersion(
        version,
        metrics=json.loads(METRICS_FILE.read_text()),
        data_version=outputs.get(str(RAW_DATA), ""),
        model_md5=model_md5,
        commit=git("rev-parse", "HEAD"),
    )


class Backend(Protocol):
    """What a registry back-end does (registry_gto.py, or MLflow's with that tracker)."""

    def register(self, model: ModelVersion, push: bool) -> None: ...

    def promote(self, version: str, stage: str, push: bool) -> None: ...

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first, with the stages it holds now."""
        ...

    def fetch(self, model: ModelVersion, directory: Path) -> Path:
        """The version's model file, written into directory."""
        ...


def register(registry: Backend, version: str, push: bool = False) -> ModelVersion:
    model = committed_model(version)
    if any(v.version == version for v in registry.versions()):
        raise RegistryError(f"version {version} is registered already")
    registry.register(model, push)
    return model


def promote(registry: Backend, version: str, stage: str, push: bool = False) -> ModelVersion:
    if not STAGE.match(stage):
        raise RegistryError(f"stage {stage!r}: lowercase letters, digits and '-' (production)")
    known = {v.version: v for v in registry.versions()}
    if version not in known:
        listed = ", ".join(known) or "none yet (`poe register`)"
        raise RegistryError(f"version {version} is not registered; registered: {listed}")
    registry.promote(version, stage, push)
    return known[version]


def in_stage(registry: Backend, stage: str) -> ModelVersion | None:
    """The version holding stage, or None."""
    return next((v for v in registry.versions() if stage in v.stages), None)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def table(found: list[ModelVersion]) -> str:
    if not found:
        return "no model versions registered yet (`poe register` on a release tag)"
    names = sorted({name for v in found for name in v.metrics})
    header = ["version", "stages", *names, "data version", "commit"]
    rows = [
        [
            v.version,
            ", ".join(v.stages) or "-",
            *(_number(v.metrics.get(n)) for n in names),
            v.data_version[:12] or "-",
            v.commit[:10],
        ]
        for v in found
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    )
