"""The training package: data, features, model, pipeline stages and operations."""

__version__ = "0.1.0"
