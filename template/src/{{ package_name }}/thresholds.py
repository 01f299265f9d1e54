"""Pass/fail of metrics against params.yaml's thresholds (`evaluate.thresholds`).

The one judgment the quality gate, the model card and the model-quality tests share.
"""


def threshold_failures(metrics: dict[str, float], thresholds: dict[str, float]) -> dict[str, str]:
    """For each thresholded metric that is below its threshold or missing: why it fails."""
    failures = {}
    for name, threshold in thresholds.items():
        if name not in metrics:
            failures[name] = f"{name} has a threshold but the pipeline did not report it"
        elif metrics[name] < threshold:
            failures[name] = f"{name} = {metrics[name]:.4f} is below its threshold {threshold}"
    return failures
