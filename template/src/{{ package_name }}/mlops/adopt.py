"""adopt-data: put the team's own CSV file in place of the bundled sample, in one command.

Everything is checked before anything is written: the file reads as CSV, the target exists and
varies, and the data meets the contract inferred from it. Then it writes schema.yaml, copies the
file to data/raw/dataset.csv under DVC (data/raw/dataset.csv.dvc records the new version in
place of the sample's; dvc.yaml stays the template's), sets params.yaml's thresholds for the kind
of target, runs the pipeline and writes the deploy smoke request from the trained model. Nothing
is committed: the team reviews schema.yaml first.
"""

import json
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..data import read_data
from .config import PARAMS_FILE, RAW_DATA
from .schema import SCHEMA_FILE, Contract, infer_contract, labelled, validate, write_contract
from .traffic import json_rows

DVC_FILE = Path("dvc.yaml")
# Present only in repositories that deploy (the deploy_target answer).
SMOKE_REQUEST = Path("deploy", "smoke-request.json")  # a /predict body
SMOKE_EXPECTED = Path("deploy", "smoke-expected.json")  # what the model answers it
SAMPLE_PARAMS = "data"  # params.yaml's section of the bundled sample, before it was a .dvc file
CANDIDATES_PER_CLASS = 20  # rows of each label tried for the smoke request
# params.yaml validate.min_rows_per_class, added with this value to a params.yaml without it.
MIN_ROWS_PER_CLASS = 5


class AdoptError(ValueError):
    """Raised before anything is written; the message names the file or column at fault."""


def _yaml():
    """ruamel.yaml in round-trip mode: comments and layout of the team's files stay."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the template's layout
    yaml.width = 4096  # long commands stay on one line
    return yaml


def baseline_thresholds(
    df: pd.DataFrame, contract: Contract, split: tuple[float, int] | None = None
) -> dict[str, float]:
    """The scores of the simplest answer (the most common label; the mean): a model must beat
    them. The team raises them once it knows what its model achieves.

    With split (params.yaml's split.test_size and seed), they are the scores of the training
    rows' answer on the held-out rows the quality gate scores the model on (drawn as data.split
    draws them), not on the whole data: a model that learnt the simplest answer then meets them
    exactly instead of missing them by the difference between the two sets of rows."""
    actual = df[contract.target]
    train, test = actual, actual
    if split is not None:
        from sklearn.model_selection import train_test_split

        test_size, seed = split
        stratify = actual if contract.classification else None
        train, test = train_test_split(
            actual, test_size=test_size, random_state=seed, stratify=stratify
        )
    if contract.classification:
        from sklearn.metrics import f1_score

        guess = pd.Series(train.mode().iloc[0], index=test.index)
        scores = {
            "accuracy": (test == guess).mean(),
            "f1_macro": f1_score(test, guess, average="macro"),
        }
        # rounded towards passing: the simplest answer itself meets its own scores
        return {name: math.floor(float(score) * 1e4) / 1e4 for name, score in scores.items()}
    rmse = float(((test - train.mean()) ** 2).mean() ** 0.5)
    digits = 5 - math.floor(math.log10(rmse)) if rmse > 0 else 0  # six significant digits
    return {"r2": 0.0, "rmse": math.ceil(rmse * 10**digits) / 10**digits}


def check(source: Path, target: str, categories: Sequence[str]) -> tuple[pd.DataFrame, Contract]:
    """The data and its inferred contract, or AdoptError/DataValidationError: nothing written."""
    for needed in (PARAMS_FILE, DVC_FILE):
        if not needed.is_file():
            raise AdoptError(f"{needed} not found: run adopt-data from the repository's root")
    if not source.is_file():
        raise AdoptError(f"{source}: no such file")
    df = read_data(source)
    if df.empty:
        raise AdoptError(f"{source}: the file has a header but no data rows")
    contract = infer_contract(df, target, categories)
    rules = _yaml().load(PARAMS_FILE).get("validate", {})
    validate(
        df,
        str(source),
        refuse_duplicates=False,  # repeated rows are kept, counted and the rule set (decisions)
        min_rows_per_class=int(rules.get("min_rows_per_class", MIN_ROWS_PER_CLASS)),
        contract=contract,
    )
    return df, contract


def decisions(df: pd.DataFrame, contract: Contract) -> list[str]:
    """What adopt-data decided for the team, one line each, and where each is recorded."""
    lines = [
        f"left out of the features: {name} ({reason}); schema.yaml left_out"
        for name, reason in contract.left_out
    ]
    lines += [
        f"{f.name}: dates, read as their {', '.join(f.parts)} (schema.yaml features.{f.name} "
        "type: date, parts)"
        for f in contract.features
        if f.type == "date"
    ]
    if unlabelled := int(df[contract.target].isna().sum()):
        lines.append(
            f"{unlabelled} of {len(df)} rows have no '{contract.target}': left out of training "
            "(schema.yaml target.nullable: true; false refuses them)"
        )
    if repeated := int(df.duplicated().sum()):
        lines.append(
            f"{repeated} rows repeat an earlier row: kept (params.yaml validate.duplicates: keep;"
            " refuse stops the pipeline on them)"
        )
    return lines


def copy_data(source: Path) -> None:
    if source.resolve() == RAW_DATA.resolve():
        return
    RAW_DATA.parent.mkdir(parents=True, exist_ok=True)
    # Unlink first: the old file may be a link into DVC's cache, which must not be overwritten.
    RAW_DATA.unlink(missing_ok=True)
    shutil.copyfile(source, RAW_DATA)


def _innermost(node):
    """The last mapping nested at the end of node, where ruamel keeps a trailing comment (the
    one that opens the next section of the file)."""
    inner = node[-1] if isinstance(node, list) else node
    while isinstance(inner[list(inner)[-1]], dict):
        inner = inner[list(inner)[-1]]
    return inner


def _replace_contents(node, entries) -> None:
    """Give a ruamel list or mapping new entries in place, keeping its trailing comment."""
    old = _innermost(node)
    trailing = old.ca.items.get(list(old)[-1])
    if isinstance(node, list):
        node[:] = entries
    else:
        node.clear()
        node.update(entries)
    if trailing:
        new = _innermost(node)
        new.ca.items[list(new)[-1]] = trailing


def rewrite_params(thresholds: dict[str, float], keep_duplicates: bool = False) -> None:
    """params.yaml for the adopted data: its thresholds, and validate.duplicates: keep when
    the data repeats rows (the team's other settings and comments stay)."""
    yaml = _yaml()
    params = yaml.load(PARAMS_FILE)
    params.pop(SAMPLE_PARAMS, None)  # the sample's size: no sample any more
    rules = params.setdefault("validate", {})
    rules.setdefault("min_rows_per_class", MIN_ROWS_PER_CLASS)
    if keep_duplicates:
        rules["duplicates"] = "keep"
    evaluate = params.setdefault("evaluate", {})
    if evaluate.get("thresholds"):
        _replace_contents(evaluate["thresholds"], thresholds)
    else:
        evaluate["thresholds"] = thresholds
    yaml.dump(params, PARAMS_FILE)


def _plain(value):
    """A JSON value for one cell: None for a missing one, Python numbers for numpy ones."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _predict(package: str, rows: pd.DataFrame) -> list:
    """The trained model's answers for rows, through the CLI in a new process: this process
    loaded the contract that was in place before adopt-data."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "rows.csv", Path(tmp) / "predictions.csv"
        rows.to_csv(data, index=False)
        subprocess.run(
            [sys.executable, "-m", package, "predict", str(data), "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,  # its errors still show
        )
        return [_plain(v) for v in pd.read_csv(out)["prediction"]]


def smoke_request(df: pd.DataFrame, contract: Contract, package: str) -> tuple[dict, dict]:
    """Rows of the data for the deployed API (a /predict body) and the model's answers: one row
    of each label, each one the model answers with that label where such a row exists (complete
    rows first); for regression, three rows and the values the model gives them."""
    df = labelled(df, contract)
    complete = df[df.notna().all(axis=1)]
    pool = pd.concat([complete, df.drop(complete.index)])
    if not contract.classification:
        rows = pool.head(3)
        predicted = _predict(package, rows[contract.names])
        return {"rows": json_rows(rows, contract)}, {"values": predicted}
    candidates = pool.groupby(contract.target, sort=False).head(CANDIDATES_PER_CLASS)
    candidates = candidates.assign(prediction=_predict(package, candidates[contract.names]))
    chosen = []
    for label in contract.labels:
        of_label = candidates[candidates[contract.target] == label]
        right = of_label[of_label["prediction"] == of_label[contract.target]]
        chosen.append((right if len(right) else of_label).iloc[0])
    rows = pd.DataFrame(chosen)
    return {"rows": json_rows(rows, contract)}, {"labels": [_plain(v) for v in rows["prediction"]]}


def _run(*command: str) -> None:
    print(f"adopt-data: $ {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)


def adopt(
    source: Path, target: str, categories: Sequence[str], package: str
) -> tuple[Contract, list[str]]:
    """Adopt source as the data set; returns its contract and the paths to commit. Raises
    AdoptError or DataValidationError, with nothing written, when it cannot be adopted."""
    df, contract = check(Path(source), target, categories)
    for line in decisions(df, contract):
        print(f"adopt-data: {line}", flush=True)
    note = (
        f"Inferred by adopt-data from {Path(source).name} ({len(df)} rows): check every entry;\n"
        "ranges are the observed ones widened by their width on each side."
    )
    write_contract(contract, SCHEMA_FILE, note)
    copy_data(Path(source))
    params = _yaml().load(PARAMS_FILE)
    split = (float(params["split"]["test_size"]), int(params["seed"]))
    rewrite_params(
        baseline_thresholds(labelled(df, contract), contract, split),
        keep_duplicates=bool(df.duplicated().any()),
    )
    _run("dvc", "add", str(RAW_DATA))  # not --quiet: that hides DVC's own error line too
    _run("dvc", "repro")
    if SMOKE_REQUEST.is_file():
        request, expected = smoke_request(df, contract, package)
        SMOKE_REQUEST.write_text(json.dumps(request, indent=2) + "\n")
        SMOKE_EXPECTED.write_text(json.dumps(expected, indent=2) + "\n")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True
    )  # outside a git repository: nothing to list
    return contract, sorted(line[3:] for line in status.stdout.splitlines())


def summary(contract: Contract) -> str:
    """One line per fact the team should check in schema.yaml."""
    kinds = {}
    for feature in contract.features:
        kinds.setdefault(feature.type, []).append(feature.name)
    target = f"target '{contract.target}': {contract.kind}"
    if contract.classification:
        target += f" with labels {list(contract.labels)}"
    lines = [target] + [f"{kind}: {', '.join(names)}" for kind, names in kinds.items()]
    if nullable := [f.name for f in contract.features if f.nullable]:
        lines.append(f"missing values allowed in: {', '.join(nullable)}")
    if contract.target_nullable:
        lines.append(f"rows without '{contract.target}': left out of training")
    if contract.left_out:
        lines.append(f"left out (not features): {', '.join(n for n, _ in contract.left_out)}")
    return "\n".join(f"  {line}" for line in lines)
