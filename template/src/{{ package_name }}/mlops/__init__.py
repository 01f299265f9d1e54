"""The template's code: the pipeline's commands, the data contract, the API, monitoring, the
quality gate and releases. `copier update` keeps it current, so edit the modules one level up
(yours) instead, and import from here only through `api.py`.
"""
