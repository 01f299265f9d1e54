"""Offline plots: `dvc plots show` as one self-contained HTML page.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so it is blank without
internet access. This builds an HTML template with the three libraries inlined (taken once
from the npm registry with `npm pack`, the same versions DVC's page loads) and renders the
pipeline's plots into it. The template is cached in .dvc/tmp (git-ignored).
"""

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .config import PLOTS_TEMPLATE

# The versions dvc-render's page loads from the CDN, and each package's browser build.
VEGA_PACKAGES = {
    "vega": ("5.20.2", "package/build/vega.min.js"),
    "vega-lite": ("5.2.0", "package/build/vega-lite.min.js"),
    "vega-embed": ("6.18.2", "package/build/vega-embed.min.js"),
}

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>DVC plots</title>
<!-- inlined scripts -->
    <style>
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


class PlotsError(RuntimeError):
    pass


def build_template(out: Path = PLOTS_TEMPLATE, npm: str | None = None) -> Path:
    """Write an HTML template for `dvc plots show --html-template` with vega inlined."""
    npm = npm or shutil.which("npm")
    if npm is None:
        raise PlotsError(
            "npm was not found on PATH: it is needed once to fetch vega, vega-lite and "
            "vega-embed for an offline page. Install Node.js (which ships npm), or run "
            "`dvc plots show` for a page that loads them from the internet."
        )
    specs = [f"{name}@{version}" for name, (version, _) in VEGA_PACKAGES.items()]
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [npm, "pack", *specs, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PlotsError(f"npm pack {' '.join(specs)} failed: {result.stderr.strip()}")
        for name, (version, member) in VEGA_PACKAGES.items():
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as archive:
                code = archive.extractfile(member).read().decode("utf-8")
            # A literal "</script" inside the code would end the inline element early.
            code = code.replace("</script", "<\\/script")
            scripts.append(f"    <script>/* {name}@{version} */\n{code}\n    </script>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(PAGE.replace("<!-- inlined scripts -->", "\n".join(scripts)), encoding="utf-8")
    return out


def written_plots(pipeline: Path = Path("dvc.yaml")) -> list[str]:
    """dvc.yaml's top-level plots whose data exists: it declares the plots of both kinds of
    target, and the evaluate stage writes those of the data's kind."""
    import yaml

    entries = (yaml.safe_load(pipeline.read_text()) or {}).get("plots", [])
    names = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]
    return [name for name in names if Path(name).exists()]


def show(out_dir: Path, template: Path = PLOTS_TEMPLATE, rebuild: bool = False) -> Path:
    """Render every plot of the pipeline that has data into out_dir/index.html, self-contained."""
    if rebuild or not Path(template).is_file():
        build_template(template)
    result = subprocess.run(
        ["dvc", "plots", "show", "--html-template", str(template), "-o", str(out_dir)]
        + written_plots(),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PlotsError(f"dvc plots show failed: {result.stderr.strip()}")
    return Path(out_dir) / "index.html"
