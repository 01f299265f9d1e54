"""Model release: the DVC-tracked model, its metrics, params and data version, tied to a tag.

CI runs this on a version tag and attaches the directory to the provider's release; the
manifest's md5 values are the ones in dvc.lock, so `git checkout <tag> && dvc pull` returns
exactly this model and data.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .config import (
    DATA_VALIDATION_REPORT,
    DVC_LOCK,
    METRICS_FILE,
    PARAMS_FILE,
    PREPARED_DIR,
    RAW_DATA,
)
from .schema import CONTRACT, FEATURE_LIMIT, FEATURES, LABELS, TARGET, Feature
from .thresholds import threshold_failures


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    return result.stdout.strip()


def lock_md5s(lock_path: Path) -> dict[str, str]:
    """The md5 of every file dvc.lock records, output or dependency: the raw data is a
    dependency of the validate stage (its .dvc file tracks it), the model an output."""
    return md5s_in(lock_path.read_text())


def md5s_in(lock_text: str) -> dict[str, str]:
    """lock_md5s of dvc.lock's text (as `git show REV:dvc.lock` prints an earlier one)."""
    lock = yaml.safe_load(lock_text) or {}
    return {
        entry["path"]: entry.get("md5", "")
        for stage in lock.get("stages", {}).values()
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]
    }


def _rows(path: Path) -> int | None:
    """Data rows of a CSV pipeline output, or None when the output is not in the workspace."""
    path = Path(path)
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


def data_summary(prepared: Path = PREPARED_DIR) -> dict[str, Any]:
    """What the model was trained and evaluated on, read from the pipeline's outputs."""
    report = DATA_VALIDATION_REPORT
    summary = json.loads(report.read_text()) if report.is_file() else {}
    return {
        "source": summary.get("source", str(RAW_DATA)),
        "rows": summary.get("rows"),
        "train_rows": _rows(Path(prepared) / "train.csv"),
        "test_rows": _rows(Path(prepared) / "test.csv"),
        "features": list(FEATURES),
        "target": TARGET,
        "kind": CONTRACT.kind,
        "labels": [str(label) for label in LABELS],
    }


def _known(value: Any) -> Any:
    return "unknown" if value is None else value


def _allowed(feature: Feature) -> str:
    """The values a feature may take, as schema.yaml states them."""
    if feature.type == "category":
        return ", ".join(f"`{category}`" for category in feature.categories)
    if feature.type == "boolean":
        return "true or false"
    if feature.type == "date":
        return f"dates, read as their {', '.join(feature.parts)}"
    if (feature.min, feature.max) == (-FEATURE_LIMIT, FEATURE_LIMIT):
        return "any finite number"
    return f"{feature.min:g} to {feature.max:g}"


def feature_table() -> str:
    """The data contract's features as a Markdown table: type, allowed values, missing values."""
    rows = [
        f"| `{f.name}` | {f.type} | {_allowed(f)} | {'allowed' if f.nullable else 'refused'} |"
        for f in CONTRACT.features
    ]
    return "\n".join(["| feature | type | values | missing |", "|---|---|---|---|", *rows])


def _predicts(data: dict[str, Any]) -> str:
    if data["kind"] == "classification":
        return f"one of the labels {', '.join(data['labels'])}"
    return "a number"


def _verdict(name: str, value: float, thresholds: dict[str, float]) -> str:
    if name not in thresholds:
        return "-"
    return "fails" if threshold_failures({name: value}, {name: thresholds[name]}) else "passes"


def model_card(
    name: str,
    tag: str,
    metrics: dict,
    params: dict[str, Any],
    manifest: dict,
    description: str = "",
) -> str:
    data = manifest.get("data") or data_summary()
    thresholds = params["evaluate"]["thresholds"]
    rows = "\n".join(
        f"| {k} | {v} | {thresholds.get(k, '-')} | {_verdict(k, v, thresholds)} |"
        for k, v in metrics.items()
    )
    passed = not threshold_failures(metrics, thresholds)
    return f"""# Model card: {name} {tag}

{description}

## Intended use
Predicts `{data["target"]}` ({_predicts(data)}) from the {len(data["features"])} features of
the data contract (`schema.yaml`, below), for rows like the training data described below. Not
validated for data outside the training distribution: run the drift monitor
(`python -m {__package__} monitor batch.csv`) on new batches before trusting predictions, and
retrain when it reports drift.

## Training data
- Source: `{data["source"]}`, {_known(data["rows"])} rows after validation; version (md5 in
  dvc.lock): `{manifest["data_version"]}`
- Split: {_known(data["train_rows"])} training rows, {_known(data["test_rows"])} held-out rows
  (test_size {params["split"]["test_size"]}, seed {params["seed"]})
- Features, as the data contract (`schema.yaml`) states them:

{feature_table()}

## Training parameters
```yaml
{yaml.safe_dump({"seed": params["seed"], "train": params["train"]}, sort_keys=True).strip()}
```

## Metrics on held-out data
| metric | value | threshold | result |
|---|---|---|---|
{rows}

Quality gate: {"passed" if passed else "FAILED"} (thresholds from params.yaml `evaluate`).

## Provenance
git commit `{manifest["commit"]}`, tag `{tag}`; model `{manifest["model"]}`, md5
`{manifest["model_md5"]}`. `git checkout {tag} && dvc pull` restores this model and its data.
"""


def release(
    tag: str,
    model: Path,
    out_dir: Path,
    params: dict[str, Any],
    name: str,
    description: str = "",
) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.loads(METRICS_FILE.read_text())
    outputs = lock_md5s(DVC_LOCK)
    manifest = {
        "tag": tag,
        "commit": _git("rev-parse", "HEAD"),
        "model": model.name,
        "model_md5": outputs.get(str(model), ""),
        "data_version": outputs.get(str(RAW_DATA), ""),
        "data": data_summary(),
        "metrics": metrics,
        "params": params,
    }
    shutil.copy2(model, out_dir / model.name)
    for extra in (PARAMS_FILE, DVC_LOCK, METRICS_FILE):
        shutil.copy2(extra, out_dir / extra.name)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(
        model_card(name, tag, metrics, params, manifest, description)
    )
    return out_dir
