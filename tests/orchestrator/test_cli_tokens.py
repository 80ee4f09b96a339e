"""`parklink token`: create (printed once), list (never the secret), revoke."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_token_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "park.yaml"
    text = (REPO / "examples" / "demo-park.yaml").read_text()
    config.write_text(text.replace("sqlite:///parklink-demo.db", f"sqlite:///{tmp_path}/tokens.db"))
    assert main(["token", "create", "--config", str(config), "--company", "acme", "--role", "operator"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("plk_") and len(token) > 40
    assert main(["token", "create", "--config", str(config), "--park", "--name", "grafana"]) == 0
    capsys.readouterr()
    assert main(["token", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "operator" in listing and "acme" in listing and "grafana" in listing
    assert token not in listing and token[4:20] not in listing  # the secret is never shown again
    assert main(["token", "revoke", "--config", str(config), "1"]) == 0
    assert main(["token", "revoke", "--config", str(config), "1"]) == 1  # already revoked
    capsys.readouterr()
    assert main(["token", "create", "--config", str(config), "--company", "nobody"]) == 2
    assert "no company 'nobody'" in capsys.readouterr().err
