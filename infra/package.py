"""The AWS deployment: `chalice package --stage aws`, its dependency layer trimmed, then measured and linted.

`python -m infra.package [OUT_DIR]` (default `.stack/package`) writes Chalice's SAM template
(`sam.json`), the functions' code (`deployment.zip`) and the managed layer that holds
`requirements.txt` (`layer-deployment.zip`, `automatic_layer` in the `aws` stage), prints each
function's unzipped size with its layers against Lambda's limits, runs cfn-lint on `sam.json`
and `infra/cloudformation.json`, and runs the app from the unzipped package alone
(`infra/lambda_smoke.py`). It exits non-zero when a function does not fit, a template does not
lint clean or the app does not run.

Chalice builds the layer from `requirements.txt` exactly as `chalice package` does; the one
change is a step after its `DependencyBuilder` has installed the wheels: `trim` removes what no
function reads at run time (test suites, C/Cython sources and headers, type stubs, pvlib's
example data, SciPy subpackages nothing imports) and strips the symbol tables of extension
modules. Untrimmed, the layer is ≈357 MB unzipped against Lambda's 250 MiB; trimmed, ≈243 MB.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".stack" / "package"
STAGE = "aws"
#: Lambda refuses a function whose code and layers unzip to 262,144,000 bytes or more (250 MiB).
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
LAMBDA_LAYER_LIMIT = 5
#: The python3.11 runtime puts a layer's `python/lib/python3.11/site-packages` on sys.path.
LAYER_SITE_PACKAGES = "python/lib/python3.11/site-packages"
#: Merged into Chalice's template: the API's role (it presigns upload URLs) gets the fixed name that
#: infra/cloudformation.json's ApiRoleArn names (arn:aws:iam::<account>:role/drec-platform-aws).
MERGED_TEMPLATE = ROOT / "infra" / "sam_merge.json"
CHALICE_OUTPUTS = ("sam.json", "deployment.zip", "layer-deployment.zip")
#: What the python3.11 runtime provides besides the standard library.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Chalice only needs a region to name the partition's service principals; the template itself
#: uses `${AWS::Region}`. Any region of the `aws` partition gives the same template.
DEFAULT_REGION = "us-east-1"

#: Folders no function imports: the libraries' own test suites (pandas' alone is 18 MB).
PRUNED_FOLDERS = frozenset({"tests", "__pycache__"})
#: pycryptodome's self tests; numpy's SIMD test module and distutils (for building extensions);
#: SciPy subpackages that neither pvlib nor chalicelib imports (pandas reaches scipy.stats and
#: scipy.signal only for kernel densities, rank correlations and window weights, which the twin
#: does not use). `tests/integration/test_aws_package.py` imports the app and runs the twin
#: from the trimmed layer.
PRUNED_PATHS = (
    "Crypto/SelfTest",
    "numpy/_core/_simd.cpython-311-x86_64-linux-gnu.so",
    "numpy/distutils",
    "scipy/cluster",
    "scipy/datasets",
    "scipy/fftpack",
    "scipy/io",
    "scipy/misc",
    "scipy/ndimage",
    "scipy/odr",
    "scipy/signal",
    "scipy/stats",
)
#: `numpy.testing` (imported by scipy) imports this helper from numpy's test suite.
KEPT_TEST_FILES = frozenset({"numpy/_core/tests/__init__.py", "numpy/_core/tests/_natype.py"})
#: Sources, headers and stubs kept by wheels for builders and type checkers, not for running.
PRUNED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp")
#: What the twin reads from pvlib's data: Linke turbidity and altitude at a device's site
#: (`clearsky.lookup_linke_turbidity`, `location.lookup_altitude`). The rest is example
#: weather and module libraries (≈12 MB).
PVLIB_DATA_KEPT = frozenset({"LinkeTurbidities.h5", "Altitude.h5"})


@dataclass(frozen=True)
class FunctionSize:
    """One Lambda function of the template: its code and layers, unzipped [bytes]."""

    name: str
    code_bytes: int
    layer_bytes: tuple[tuple[str, int], ...]

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + sum(size for _, size in self.layer_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes < LAMBDA_UNZIPPED_LIMIT_BYTES and len(self.layer_bytes) <= LAMBDA_LAYER_LIMIT


def trim(site_packages: Path) -> None:
    """Remove from installed packages what no function reads at run time; strip extension modules."""
    for path in sorted(site_packages.rglob("*"), reverse=True):
        relative = path.relative_to(site_packages).as_posix()
        if path.is_file() and is_pruned(relative):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    _strip_shared_libraries(site_packages)


def is_pruned(relative: str) -> bool:
    """Whether a file of the layer (path relative to site-packages) is left out."""
    if relative in KEPT_TEST_FILES:
        return False
    parts = relative.split("/")
    if PRUNED_FOLDERS.intersection(parts[:-1]):
        return True
    if any(relative == path or relative.startswith(path + "/") for path in PRUNED_PATHS):
        return True
    if relative.endswith(PRUNED_SUFFIXES):
        return True
    return parts[:2] == ["pvlib", "data"] and len(parts) == 3 and parts[2] not in PVLIB_DATA_KEPT


def _strip_shared_libraries(site_packages: Path) -> None:
    """Drop the symbol tables of extension modules that the dynamic linker does not need (≈35 MB).

    Libraries that auditwheel vendored into `<package>.libs/` are left whole: patchelf rewrote
    their program headers, and `strip` then leaves them unloadable ("ELF load command
    address/offset not page-aligned").
    """
    strip = shutil.which("strip")
    if strip is None:
        print("strip not found: shared libraries are packaged with their symbols", file=sys.stderr)
        return
    libraries = [
        str(path)
        for path in site_packages.rglob("*.so*")
        if path.is_file() and not path.relative_to(site_packages).parts[0].endswith(".libs") and _is_elf(path)
    ]
    for start in range(0, len(libraries), 200):
        subprocess.run([strip, "--strip-unneeded", *libraries[start : start + 200]], check=True)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"\x7fELF"


def trim_fingerprint() -> str:
    """Changes whenever the trimming rules change, so that layers trimmed by older rules are rebuilt."""
    rules = [sorted(PRUNED_FOLDERS), PRUNED_PATHS, sorted(KEPT_TEST_FILES), PRUNED_SUFFIXES, sorted(PVLIB_DATA_KEPT)]
    code = [inspect.getsource(function) for function in (trim, is_pruned, _strip_shared_libraries)]
    return hashlib.sha256(repr([rules, code]).encode()).hexdigest()[:16]


def _forget_untrimmed_layers(project_dir: Path) -> None:
    """Chalice reuses `.chalice/deployments/managed-layer-*.zip` keyed on requirements.txt alone: keep only
    the layers this module trimmed under the current rules (a plain `chalice package` caches untrimmed ones)."""
    deployments = project_dir / ".chalice" / "deployments"
    stamp = deployments / "trimmed-layers"
    recorded = stamp.read_text().split() if stamp.is_file() else []
    trimmed = set(recorded[1:]) if recorded[:1] == [trim_fingerprint()] else set()
    for cached in deployments.glob("managed-layer-*.zip"):
        if cached.name not in trimmed:
            cached.unlink()


def _record_trimmed_layers(project_dir: Path) -> None:
    deployments = project_dir / ".chalice" / "deployments"
    names = sorted(cached.name for cached in deployments.glob("managed-layer-*.zip"))
    (deployments / "trimmed-layers").write_text("\n".join([trim_fingerprint(), *names]) + "\n")


def package(out_dir: Path, project_dir: Path = ROOT) -> None:
    """Run `chalice package --stage aws out_dir` with the layer trimmed after Chalice installs it."""
    from chalice.cli import cli
    from chalice.deploy.packager import DependencyBuilder

    install = DependencyBuilder.build_site_packages

    def install_then_trim(self: DependencyBuilder, abi: str, requirements_filepath: str, target_directory: str) -> None:
        install(self, abi, requirements_filepath, target_directory)
        trim(Path(target_directory))

    _forget_untrimmed_layers(project_dir)
    for output in CHALICE_OUTPUTS:
        (out_dir / output).unlink(missing_ok=True)
    # Chalice loads the app with the aws stage's environment variables set in os.environ (its
    # DREC_POOLING, DREC_EVENT_SHARDS...): put the caller's environment back afterwards.
    environment = dict(os.environ)
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    try:
        with mock.patch.object(DependencyBuilder, "build_site_packages", install_then_trim):
            cli.main(
                args=["--project-dir", str(project_dir), "package", "--stage", STAGE,
                      "--merge-template", str(MERGED_TEMPLATE), str(out_dir)],
                obj={},
                standalone_mode=False,
            )
    finally:
        os.environ.clear()
        os.environ.update(environment)
    _record_trimmed_layers(project_dir)


def unzipped(out_dir: Path, archive: str) -> Path:
    """The archive unpacked beside it (once per archive content), as Lambda unpacks it."""
    zipped = out_dir / archive
    target = out_dir / "unzipped" / Path(archive).stem
    stamp = target.with_name(target.name + ".sha256")
    digest = _digest(zipped)
    if not (stamp.is_file() and stamp.read_text() == digest):
        shutil.rmtree(target, ignore_errors=True)
        with zipfile.ZipFile(zipped) as archive_file:
            archive_file.extractall(target)
        stamp.write_text(digest)
    return target


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(path: Path) -> str:
    status = path.stat()
    return _sha256(path, status.st_size, status.st_mtime_ns)


def unzipped_bytes(out_dir: Path, archive: str) -> int:
    """Bytes of the archive's files as unpacked on disk (files written there since, such as bytecode, not counted)."""
    target = unzipped(out_dir, archive)
    with zipfile.ZipFile(out_dir / archive) as archive_file:
        names = [info.filename for info in archive_file.infolist() if not info.is_dir()]
    return sum((target / name).stat().st_size for name in names)


def function_sizes(out_dir: Path) -> list[FunctionSize]:
    """Each function of the generated SAM template with its code and layers unzipped [bytes]."""
    resources = json.loads((out_dir / "sam.json").read_text())["Resources"]
    sizes = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layers = []
        for layer in properties.get("Layers", []):
            if not (isinstance(layer, dict) and "Ref" in layer):
                raise ValueError(f"{name}: layer {layer!r} is not built here, so its size is unknown")
            content = resources[layer["Ref"]]["Properties"]["ContentUri"]
            layers.append((layer["Ref"], unzipped_bytes(out_dir, content)))
        code = unzipped_bytes(out_dir, properties["CodeUri"])
        sizes.append(FunctionSize(name, code, tuple(layers)))
    return sizes


def lint(templates: list[Path]) -> subprocess.CompletedProcess[str]:
    """cfn-lint over the templates; a clean run prints nothing and exits 0."""
    command = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]
    return subprocess.run([*command, *map(str, templates)], capture_output=True, text=True, check=False)


def smoke(out_dir: Path) -> subprocess.CompletedProcess[str]:
    """Import the app and run the twin from the unzipped code and layer alone (`infra/lambda_smoke.py`)."""
    resources = json.loads((out_dir / "sam.json").read_text())["Resources"]
    code = unzipped(out_dir, resources["APIHandler"]["Properties"]["CodeUri"])
    layer = unzipped(out_dir, resources["ManagedLayer"]["Properties"]["ContentUri"]) / LAYER_SITE_PACKAGES
    runtime = out_dir / "runtime-provided"
    runtime.mkdir(exist_ok=True)
    for name in RUNTIME_PROVIDED:
        link = runtime / name
        link.unlink(missing_ok=True)
        link.symlink_to(Path(importlib.import_module(name).__file__ or "").parent)
    # -I -S: no site-packages of this machine; -B: the unpacked package stays as unzipped.
    script = ROOT / "infra" / "lambda_smoke.py"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(script), str(code), str(layer), str(runtime)],
        capture_output=True, text=True, check=False, cwd=out_dir,
    )


def templates(out_dir: Path) -> list[Path]:
    return [out_dir / "sam.json", ROOT / "infra" / "cloudformation.json"]


def render(sizes: list[FunctionSize]) -> str:
    mib = 1024 * 1024
    limit = f"Lambda's limit: {LAMBDA_UNZIPPED_LIMIT_BYTES / mib:.0f} MiB ({LAMBDA_UNZIPPED_LIMIT_BYTES:,} bytes)"
    lines = [f"{'function':<20}{'code MiB':>10}{'layers MiB':>12}{'total MiB':>11}  {limit}"]
    for size in sizes:
        layer_total = sum(layer for _, layer in size.layer_bytes)
        verdict = "ok" if size.fits else "TOO BIG"
        lines.append(
            f"{size.name:<20}{size.code_bytes / mib:>10.1f}{layer_total / mib:>12.1f}{size.total_bytes / mib:>11.1f}"
            f"  {verdict} ({len(size.layer_bytes)} layer(s), {size.total_bytes:,} bytes)"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]).resolve() if argv else DEFAULT_OUT
    package(out_dir)
    sizes = function_sizes(out_dir)
    print(render(sizes))
    linted = lint(templates(out_dir))
    print(linted.stdout + linted.stderr, end="")
    print("cfn-lint: " + ("clean" if linted.returncode == 0 else f"exit {linted.returncode}"),
          "(" + ", ".join(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
                          for path in templates(out_dir)) + ")")
    smoked = smoke(out_dir)
    print(smoked.stdout + smoked.stderr, end="")
    print("smoke: " + ("passed" if smoked.returncode == 0 else f"exit {smoked.returncode}"))
    fits = bool(sizes) and all(size.fits for size in sizes)
    return 0 if fits and linted.returncode == 0 and smoked.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
