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


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    return result.stdout.strip()


def _lock_outputs(lock_path: Path) -> dict[str, str]:
    lock = yaml.safe_load(lock_path.read_text()) or {}
    return {
        out["path"]: out.get("md5", "")
        for stage in lock.get("stages", {}).values()
        for out in stage.get("outs", [])
    }


def model_card(name: str, tag: str, metrics: dict, params: dict[str, Any], manifest: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    thresholds = params["evaluate"]["thresholds"]
    return f"""# Model card: {name} {tag}

## Intended use
Classifies rows that follow the data contract in `schema.py`. Not validated for data outside
the training distribution: run the drift monitor on new batches before trusting predictions.

## Training data
Version (md5 in dvc.lock): `{manifest["data_version"]}`; split: test_size
{params["split"]["test_size"]}, seed {params["seed"]}.

## Training parameters
```yaml
{yaml.safe_dump(params["train"], sort_keys=True).strip()}
```

## Metrics on held-out data
| metric | value |
|---|---|
{rows}

Quality gate thresholds: {", ".join(f"{k} >= {v}" for k, v in thresholds.items())}.

## Provenance
git commit `{manifest["commit"]}`, tag `{tag}`; model md5 `{manifest["model_md5"]}`.
"""


def release(tag: str, model: Path, out_dir: Path, params: dict[str, Any], name: str) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = json.loads(Path("reports/metrics.json").read_text())
    outputs = _lock_outputs(Path("dvc.lock"))
    manifest = {
        "tag": tag,
        "commit": _git("rev-parse", "HEAD"),
        "model": model.name,
        "model_md5": outputs.get(str(model), ""),
        "data_version": outputs.get("data/raw/dataset.csv", ""),
        "metrics": metrics,
        "params": params,
    }
    shutil.copy2(model, out_dir / model.name)
    for extra in ("params.yaml", "dvc.lock", "reports/metrics.json"):
        shutil.copy2(extra, out_dir / Path(extra).name)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(model_card(name, tag, metrics, params, manifest))
    return out_dir
