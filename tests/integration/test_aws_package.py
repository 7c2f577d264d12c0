"""The AWS deployment as `make package` builds it: every function fits Lambda, the templates lint clean,
the layer holds exactly the runtime requirements, and the app runs from it alone.

The first run downloads the Lambda wheels (pip's cache keeps them); later runs reuse the layer
Chalice cached in `.chalice/deployments/` while requirements.txt and the trimming rules stay the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import package

OUT = package.DEFAULT_OUT
#: Tools that must never ship inside a function, whichever requirements file lists them.
DEVELOPMENT_TOOLS = frozenset({
    "boto3", "botocore", "cfn-lint", "chalice", "docker", "hypothesis", "localstack-client", "moto",
    "mypy", "playwright", "pytest", "ruff", "schemathesis",
})


def _name(requirement: str) -> str:
    return re.split(r"[=<>\[\s;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version.strip()
    return pins


@pytest.fixture(scope="module")
def built() -> Path:
    package.package(OUT)
    return OUT


@pytest.fixture(scope="module")
def layer_distributions(built: Path) -> dict[str, str]:
    """Name → version of every distribution installed in the layer, from its .dist-info folder."""
    site_packages = package.unzipped(built, "layer-deployment.zip") / package.LAYER_SITE_PACKAGES
    found = {}
    for info in site_packages.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[_name(name)] = version
    return found


def test_every_function_fits_lambda_with_its_layers(built: Path) -> None:
    sizes = package.function_sizes(built)
    print("\n" + package.render(sizes))
    assert {size.name for size in sizes} >= {"APIHandler", "ValidateReadings", "IssueDrecs", "AnchorEvents"}
    for size in sizes:
        assert size.layer_bytes, f"{size.name} has no layer: its dependencies would be missing"
        assert len(size.layer_bytes) <= package.LAMBDA_LAYER_LIMIT
        assert size.total_bytes < package.LAMBDA_UNZIPPED_LIMIT_BYTES, package.render([size])


def test_sam_template_and_cloudformation_lint_clean(built: Path) -> None:
    linted = package.lint(package.templates(built))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_layer_holds_every_runtime_requirement_at_its_pin(layer_distributions: dict[str, str]) -> None:
    # Chalice reports a requirement it finds no Lambda wheel for and packages the rest anyway.
    pins = _pins(package.ROOT / "requirements.txt")
    missing = {name: version for name, version in pins.items() if layer_distributions.get(name) != version}
    assert not missing, f"not in the layer at the pinned version: {missing}"


def test_layer_holds_no_development_tool(layer_distributions: dict[str, str]) -> None:
    development = (set(_pins(package.ROOT / "requirements-dev.txt")) - set(_pins(package.ROOT / "requirements.txt")))
    shipped = set(layer_distributions) & (development | DEVELOPMENT_TOOLS)
    assert not shipped, f"development tools inside every function: {sorted(shipped)}"


def test_app_runs_from_the_package_alone(built: Path) -> None:
    smoked = package.smoke(built)
    assert smoked.returncode == 0, smoked.stdout + smoked.stderr
    assert "shared libraries load" in smoked.stdout


def test_functions_reach_their_stage_resources_and_the_api_role_is_the_one_uploads_trust(built: Path) -> None:
    resources = json.loads((built / "sam.json").read_text())["Resources"]
    prefix = resources["APIHandler"]["Properties"]["Environment"]["Variables"]["DREC_PREFIX"]
    api_role = resources[resources["APIHandler"]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    # infra/cloudformation.json lets only this role write incoming/ in the uploads bucket.
    assert api_role["RoleName"] == "drec-platform-aws"
    data_template = (package.ROOT / "infra" / "cloudformation.json").read_text()
    assert "role/drec-platform-aws" in data_template
    statements = api_role["Policies"][0]["PolicyDocument"]["Statement"]
    tables = next(statement for statement in statements if "dynamodb:UpdateItem" in statement["Action"])
    assert f"arn:aws:dynamodb:*:*:table/{prefix}-*" in tables["Resource"]


@pytest.mark.parametrize(
    ("path", "pruned"),
    [
        ("pandas/tests/frame/test_api.py", True),
        ("numpy/_core/tests/test_umath.py", True),
        ("numpy/_core/tests/_natype.py", False),
        ("numpy/_core/include/numpy/ndarrayobject.h", True),
        ("numpy/__init__.pyi", True),
        ("numpy/__init__.py", False),
        ("scipy/stats/_stats.cpython-311-x86_64-linux-gnu.so", True),
        ("scipy/optimize/_minpack.cpython-311-x86_64-linux-gnu.so", False),
        ("pvlib/data/LinkeTurbidities.h5", False),
        ("pvlib/data/Altitude.h5", False),
        ("pvlib/data/723170TYA.CSV", True),
        ("gsee_climate_data/data/merra2_rad3x3_2011-2015_pdfs_land_prox.npz", False),
        ("cytoolz/itertoolz.pyx", True),
    ],
)
def test_trimming_keeps_what_the_twin_reads(path: str, pruned: bool) -> None:
    assert package.is_pruned(path) is pruned
