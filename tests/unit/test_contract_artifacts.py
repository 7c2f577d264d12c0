"""The committed contract artifacts are exactly what the pinned compiler produces."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / "contracts" / "build"


def test_committed_artifacts_match_a_fresh_compile() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot recompile the contracts to compare")

    result = subprocess.run(
        [node, "contracts/compile.js", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["DrecLedger", "EventLogger", "CertificateToken"])
def test_artifact_records_compiler_abi_and_bytecode(name: str) -> None:
    artifact = json.loads((BUILD_DIR / f"{name}.json").read_text())

    assert artifact["contractName"] == name
    assert artifact["compiler"] == "0.8.37"
    assert artifact["evmVersion"] == "prague"
    assert artifact["bytecode"].startswith("0x60") and len(artifact["bytecode"]) > 100
    assert artifact["deployedBytecode"].startswith("0x")
    assert len(artifact["sourceSha256"]) == 64
    assert any(item["type"] == "function" for item in artifact["abi"])
