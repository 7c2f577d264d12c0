"""The committed contract artifacts are exactly what the pinned compiler produces."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / "contracts" / "build"
PACKAGED_DIR = REPO_ROOT / "chalicelib" / "contracts_build"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot recompile the contracts to compare")
    return node


def test_committed_artifacts_match_a_fresh_compile() -> None:
    node = node_or_skip()

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


def test_the_packaged_ledger_artifact_is_a_copy_of_the_build() -> None:
    packaged = sorted(path.name for path in PACKAGED_DIR.glob("*.json"))

    assert packaged == ["DrecLedger.json"]
    assert (PACKAGED_DIR / "DrecLedger.json").read_bytes() == (
        BUILD_DIR / "DrecLedger.json"
    ).read_bytes()


def test_the_ledger_abi_has_root_keyed_views_and_no_batch_lookups() -> None:
    abi = json.loads((BUILD_DIR / "DrecLedger.json").read_text())["abi"]
    functions = {item["name"] for item in abi if item["type"] == "function"}

    assert {"rootInfo", "verifyEvent", "verifyLeaf", "isRoot"} <= functions
    assert not {"batch", "batchOf"} & functions


def test_check_names_a_stale_packaged_copy(tmp_path: Path) -> None:
    node = node_or_skip()
    shutil.copytree(
        REPO_ROOT / "contracts",
        tmp_path / "contracts",
        ignore=shutil.ignore_patterns("node_modules"),
    )
    shutil.copytree(PACKAGED_DIR, tmp_path / "chalicelib" / "contracts_build")
    stale = tmp_path / "chalicelib" / "contracts_build" / "DrecLedger.json"
    stale.write_text(stale.read_text().replace('"compiler"', '"compiler_"'))

    result = subprocess.run(
        [node, "contracts/compile.js", "--check"],
        cwd=tmp_path,
        env={"NODE_PATH": str(REPO_ROOT / "node_modules")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "differs: chalicelib/contracts_build/DrecLedger.json" in result.stderr
    assert "differs: contracts/build/" not in result.stderr
