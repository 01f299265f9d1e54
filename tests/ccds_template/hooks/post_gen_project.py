"""As CCDS does: no LICENSE file when none is chosen."""

from pathlib import Path

if "{{ cookiecutter.open_source_license }}" == "No license file":
    Path("LICENSE").unlink()
