"""Registering the package's pairlist with the plain ``freqtrade`` command.

Why a hook: Freqtrade 2026.9 loads pairlists only from its own package directory and
validates ``"method"`` against the fixed list ``freqtrade.constants.AVAILABLE_PAIRLISTS``
before any user code runs, so ``"method": "CointegrationFilter"`` in a config is rejected.
Nothing in Freqtrade's files is edited; instead:

1. ``python -m statarb.ft.plugins install`` (run by ``make install``) writes one line,
   ``import statarb.ft.plugins; statarb.ft.plugins.install()``, into a ``.pth`` file in
   the environment's site-packages. Python runs it at start-up.
2. :func:`install` puts an import finder in front of ``sys.meta_path``. It costs nothing
   until Freqtrade is imported: when ``freqtrade.constants`` is executed it appends the
   package's pairlist names to ``AVAILABLE_PAIRLISTS`` (the config schema's enum is that
   same list object), and when ``freqtrade.resolvers.pairlist_resolver`` is executed it
   adds the package's pairlist directories to ``PairListResolver``'s search path; and when
   ``freqtrade.rpc.telegram`` is executed it lets ``STATARB_TELEGRAM_API_URL`` point the
   Telegram bot at another Bot API server (see :mod:`statarb.ft.telegram`) and adds the
   ``/couples`` command to it; when ``freqtrade.rpc.api_server.api_trading`` is executed it
   adds ``GET /api/v1/statarb/couples`` to the REST API (see
   :mod:`statarb.ft.couples_command`).

The hook only runs on the Freqtrade version this package supports: importing this module
imports :mod:`statarb.ft`, whose version guard raises on any other version (Python then
prints that message when it processes the ``.pth`` file, and Freqtrade runs unpatched).
``python -m statarb.ft.plugins remove`` deletes the ``.pth`` file.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from statarb.ft import FREQTRADE_VERSION
from statarb.ft.couples_command import patch_api_trading, patch_telegram_couples
from statarb.ft.telegram import patch_telegram

__all__ = [
    "FREQTRADE_VERSION",
    "PAIRLISTS",
    "PTH_NAME",
    "install",
    "pairlist_dirs",
    "patch_api_trading",
    "patch_constants",
    "patch_resolver",
    "patch_telegram",
    "patch_telegram_module",
    "register",
]

PAIRLISTS = ("CointegrationFilter",)
PTH_NAME = "statarb_freqtrade.pth"
PTH_LINE = "import statarb.ft.plugins; statarb.ft.plugins.install()\n"
# Extra pairlist directories, separated like PATH (for Docker images and custom layouts).
PATH_ENV = "STATARB_PAIRLIST_PATH"


# The files Freqtrade's resolvers load, shipped inside the package (the checkout's top-level
# ``pairlists`` is a link to the same folder; ``statarb-setup`` copies the strategy file).
PLUGIN_FILES = Path(__file__).resolve().parent / "plugin_files"


def pairlist_dirs() -> list[Path]:
    """Where the package's pairlists live: ``$STATARB_PAIRLIST_PATH`` entries, then the
    package's own ``plugin_files/pairlists`` (installed or in a checkout alike)."""
    dirs = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(PLUGIN_FILES / "pairlists")
    return [d for d in dirs if d.is_dir()]


def patch_constants(module: ModuleType) -> None:
    """Accept the package's pairlist names in the config schema (idempotent)."""
    names = module.AVAILABLE_PAIRLISTS
    for name in PAIRLISTS:
        if name not in names:
            names.append(name)


def patch_resolver(module: ModuleType) -> None:
    """Search the package's pairlist directories after Freqtrade's own (idempotent)."""
    resolver = module.PairListResolver
    if getattr(resolver, "_statarb_patched", False):
        return
    original = resolver.build_search_paths.__func__

    def build_search_paths(
        cls: Any, config: Any, user_subdir: str | None = None,
        extra_dirs: list[str] | None = None,
    ) -> list[Path]:
        paths = original(cls, config, user_subdir=user_subdir, extra_dirs=extra_dirs)
        return paths + [d for d in pairlist_dirs() if d not in paths]

    resolver.build_search_paths = classmethod(build_search_paths)
    resolver._statarb_patched = True


def patch_telegram_module(module: ModuleType) -> None:
    """Both Telegram patches: the Bot API base URL (only when ``STATARB_TELEGRAM_API_URL``
    is set; tests use a fake Bot API on loopback) and the ``/couples`` command."""
    patch_telegram(module)
    patch_telegram_couples(module)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "freqtrade.constants": patch_constants,
    "freqtrade.resolvers.pairlist_resolver": patch_resolver,
    "freqtrade.rpc.telegram": patch_telegram_module,
    "freqtrade.rpc.api_server.api_trading": patch_api_trading,
}


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Finds the patched Freqtrade modules with the normal path finder and runs the
    patch right after the module's own code."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Install the finder once; patch modules that are already imported."""
    if not any(isinstance(f, _PatchingFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchingFinder())
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])


def _site_packages() -> Path:
    """The site directory the package is installed in (``pip install --user`` in a Docker
    image puts it in the user site), else this environment's (an editable checkout)."""
    here = Path(__file__).resolve().parents[2]
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    if any(here == Path(s).resolve() for s in sites if Path(s).is_dir()):
        return here
    return Path(sysconfig.get_paths()["purelib"])


def register() -> str:
    """Write the ``.pth`` hook into this environment's site-packages; say where."""
    pth = _site_packages() / PTH_NAME
    pth.write_text(PTH_LINE)
    return (f"registered {', '.join(PAIRLISTS)} for freqtrade {FREQTRADE_VERSION} ({pth}); "
            f"pairlist directories: {[str(d) for d in pairlist_dirs()]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m statarb.ft.plugins",
        description="Register statarb's pairlists with the plain freqtrade command "
        "(writes or removes a .pth file in this environment's site-packages).",
    )
    parser.add_argument("action", choices=("install", "remove", "status"))
    args = parser.parse_args(argv)
    pth = _site_packages() / PTH_NAME
    if args.action == "install":
        print(f"statarb: {register()}")
    elif args.action == "remove":
        pth.unlink(missing_ok=True)
        print(f"statarb: removed {pth}")
    else:
        state = "installed" if pth.exists() and pth.read_text() == PTH_LINE else "not installed"
        print(f"statarb plugin hook {state} ({pth})")
        return 0 if state == "installed" else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
