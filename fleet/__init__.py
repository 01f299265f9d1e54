"""Fleet view for platform teams: every repository made from this template, its release, drift
and update state in one report (`uv run fleet report`), and bulk updates (`uv run fleet update`).
See docs/platform-teams.md."""
