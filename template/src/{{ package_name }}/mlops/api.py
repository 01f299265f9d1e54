"""What your code uses of the template's: the data contract, validation, the drift reference,
the thresholds, date parts, experiment tracking and outputs written whole (atomically).

Your modules (data.py, features.py, model.py, train.py, evaluate.py, predict.py, and any you
add) and your tests import these names from here, never from the modules beside this one:
`copier update` may move or change those, while these names stay. `uv run poe lint` checks it
(.importlinter, "Your code imports the template's code only through api.py").
"""

from .atomic import write_text_atomically, written_atomically
from .dates import date_parts
from .reference import write_reference
from .schema import (
    CONTRACT,
    FEATURES,
    LABELS,
    TARGET,
    Contract,
    DataValidationError,
    Feature,
    labelled,
    validate,
)
from .thresholds import threshold_failures
from .tracking import is_main_process, log_metrics

__all__ = [
    "CONTRACT",
    "FEATURES",
    "LABELS",
    "TARGET",
    "Contract",
    "DataValidationError",
    "Feature",
    "date_parts",
    "is_main_process",
    "labelled",
    "log_metrics",
    "threshold_failures",
    "validate",
    "write_reference",
    "write_text_atomically",
    "written_atomically",
]
