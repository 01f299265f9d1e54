"""Pass/fail of metrics against params.yaml's thresholds (`evaluate.thresholds`).

The one judgment the quality gate, the model card and the model-quality tests share; it knows
which direction is better for each metric.
"""

# Errors: a lower value is better, and the threshold is a ceiling. Every other metric (accuracy,
# f1, recall, r2, ...) is better higher, and its threshold is a floor.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


def worsening(name: str, value: float, old: float) -> float:
    """How much worse value is than old (negative: better), whichever direction is better."""
    return value - old if name in LOWER_IS_BETTER else old - value


def threshold_failures(metrics: dict[str, float], thresholds: dict[str, float]) -> dict[str, str]:
    """For each thresholded metric on the wrong side of its threshold or missing: why it fails."""
    failures = {}
    for name, threshold in thresholds.items():
        if name not in metrics:
            failures[name] = f"{name} has a threshold but the pipeline did not report it"
        elif worsening(name, metrics[name], threshold) > 0:
            side = "above" if name in LOWER_IS_BETTER else "below"
            failures[name] = f"{name} = {metrics[name]:.4f} is {side} its threshold {threshold}"
    return failures
