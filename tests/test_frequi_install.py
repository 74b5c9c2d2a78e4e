"""``python -m statarb.ft.frequi``: FreqUI from a local build, as ``install-ui`` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from statarb.ft import frequi


def _build(root: Path, sha: str = "7a6dc577") -> Path:
    root.mkdir()
    (root / "index.html").write_text("<html></html>")
    (root / "assets").mkdir()
    (root / "assets" / "app.js").write_text("console.log(1)")
    (root / "README.md").write_text(f"a production build ... at commit {sha} (2026-08-22)\n")
    return root


def test_install_copies_the_build_with_its_version_once(tmp_path, monkeypatch) -> None:
    source = _build(tmp_path / "frequi")
    target = tmp_path / "ui" / "installed"
    target.parent.mkdir()
    monkeypatch.setattr(frequi, "installed_dir", lambda: target)
    assert frequi.install(source) == (target, True)
    assert (target / "assets" / "app.js").read_text() == "console.log(1)"
    assert (target / ".uiversion").read_text().strip() == "7a6dc577"
    assert frequi.install(source) == (target, False)  # same version: kept
    (source / "README.md").write_text("built at commit abcdef12\n")
    assert frequi.install(source) == (target, True)  # another version replaces it
    assert (target / ".uiversion").read_text().strip() == "abcdef12"
    assert not list(target.parent.glob("installed.tmp-*"))


def test_a_folder_that_is_no_build_is_refused_by_name(tmp_path, capsys) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        frequi.build_version(tmp_path)
    assert frequi.main(["--source", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    source = _build(tmp_path / "nosha")
    (source / "README.md").write_text("no version here")
    with pytest.raises(ValueError, match="at commit"):
        frequi.build_version(source)


def test_the_shared_build_has_a_version() -> None:
    from tests.shared_data import SHARED, require_shared

    require_shared()
    assert len(frequi.build_version(SHARED / "frequi")) >= 7
