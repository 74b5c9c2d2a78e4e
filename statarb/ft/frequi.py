"""Installing FreqUI from a local build, what ``freqtrade install-ui`` does from GitHub.

Why: ``install-ui`` downloads FreqUI's release from GitHub; machines without that network
(CI, this project's offline runs) have a production build in ``../shared/frequi``
instead. Freqtrade's API server serves whatever is in
``freqtrade/rpc/api_server/ui/installed`` (``web_ui.py``) and reads the version from its
``.uiversion``: this module puts a build there the same way. The folder is Freqtrade's
layout, hence a module in :mod:`statarb.ft` under the version guard.

    python -m statarb.ft.frequi [--source ../shared/frequi]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "build_version", "install", "installed_dir"]

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "frequi"


def installed_dir() -> Path:
    """Where Freqtrade's API server looks for FreqUI."""
    import freqtrade

    return Path(freqtrade.__file__).parent / "rpc" / "api_server" / "ui" / "installed"


def build_version(source: Path) -> str:
    """The FreqUI commit a build was made from (its README says ``at commit <sha>``)."""
    readme = source / "README.md"
    if not (source / "index.html").is_file() or not readme.is_file():
        raise FileNotFoundError(
            f"{source} is not a FreqUI build (needs index.html and README.md); "
            "pass --source with the folder of a FreqUI production build")
    match = re.search(r"at commit ([0-9a-f]{7,40})", readme.read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"no 'at commit <sha>' in {readme}: cannot tell the FreqUI version")
    return match.group(1)


def install(source: Path = DEFAULT_SOURCE) -> tuple[Path, bool]:
    """Copy the build at ``source`` into Freqtrade with its ``.uiversion``; returns the
    folder and whether it copied (an installed copy of the same version is kept)."""
    ui = installed_dir()
    version = build_version(source)
    stamp = ui / ".uiversion"
    if (ui / "index.html").is_file() and stamp.is_file() and stamp.read_text().strip() == version:
        return ui, False
    staging = ui.with_name(f"installed.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    # The source may have no write bits (a read-only checkout): copy contents, not modes.
    shutil.copytree(source, staging, copy_function=shutil.copyfile)
    for folder, _, _ in os.walk(staging):
        os.chmod(folder, 0o755)
    (staging / ".uiversion").write_text(version + "\n")
    shutil.rmtree(ui, ignore_errors=True)
    staging.rename(ui)  # all at once: the API server never serves half a copy
    return ui, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statarb.ft.frequi", description=__doc__)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder of a FreqUI production build (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        ui, copied = install(args.source)
    except (OSError, ValueError) as exc:
        print(f"statarb.ft.frequi: {exc}", file=sys.stderr)
        return 2
    print(f"FreqUI {'installed' if copied else 'already installed'} in {ui}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
