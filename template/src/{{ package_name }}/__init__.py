"""The training package. Yours: the modules beside this file (the data, features, model,
training, evaluation and prediction code, and the data contract schema.yaml). The template's:
mlops/ (the pipeline's commands, the API, monitoring, the quality gate, releases), which
`copier update` keeps current, and this file and __main__.py.
"""

__version__ = "0.1.0"
