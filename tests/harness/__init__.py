"""The template's test harness: everything the tests share, and nothing that is a test.

- `render`: copies of this template, renders, generated repositories, clones, template releases.
- `git`: the one git helper (a test identity), commits.
- `commands`: run a command and assert it succeeded, with its output in the failure message.
- `services`: a real Docker daemon, base image, registry and SSH host, one wait-until-ready.
- `matrix`, `ci_variants`, `renderings`: variants derived from copier.yml (the render matrix,
  the variants whose pipelines run, the distinct renderings of a provider's files).
- `broken_changes`: changes that must turn every provider's pipeline red.
- `github`, `gitlab`, `jenkins`: one module per CI runner, each returning a `ci_run.CiRun`;
  `ci_run.record_and_assert` records a run for the session's summary table and asserts it.
"""
