"""Run the packaged app as Lambda would load it: its code, its layer, and what the runtime provides.

`python -I -S infra/lambda_smoke.py CODE_DIR LAYER_SITE_PACKAGES RUNTIME_DIR` (`infra.package`
prepares the folders): no site-packages of this machine is on the path, so a module missing
from the package, or a data file trimmed that the twin reads, fails here. Every shared library
of the layer must still load after stripping. Prints one line per check; exits non-zero on the
first failure.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import importlib
import os
import pkgutil
import sys
from pathlib import Path

#: Packages the layer must provide itself (the runtime's boto3 is allowed to come from RUNTIME_DIR).
LAYER_PACKAGES = ("numpy", "scipy", "pandas", "pvlib", "h5py", "gsee_climate_data", "web3", "eth_account", "pydantic")


def main(code: Path, layer: Path, runtime: Path) -> None:
    sys.path[:0] = [str(code), str(layer), str(runtime)]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    importlib.import_module("app")
    chalicelib = importlib.import_module("chalicelib")
    modules = [info.name for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.")]
    for name in modules:
        importlib.import_module(name)
    print(f"imported app and {len(modules)} chalicelib modules")

    for name in LAYER_PACKAGES:
        origin = Path(importlib.import_module(name).__file__ or "").resolve()
        if not origin.is_relative_to(layer.resolve()):
            raise SystemExit(f"{name} was imported from {origin}, not from the layer")
    print("scientific and chain packages come from the layer")

    _twin()
    _signature()
    _shared_libraries(layer)


def _twin() -> None:
    from chalicelib.domain.twin.climatology import monthly_clear_sky_index
    from chalicelib.domain.twin.physics import DeviceTwin, clear_sky_energy
    from chalicelib.domain.twin.site import site_constants

    site = site_constants(-1.29, 36.82)  # pvlib's LinkeTurbidities.h5 and Altitude.h5 through h5py
    index = monthly_clear_sky_index(-1.29, 36.82)  # gsee-climate-data
    twin = DeviceTwin(
        device_id="dev-smoke", capacity_w=100.0, latitude=-1.29, longitude=36.82,
        commissioning_date=dt.date(2025, 1, 15), linke_turbidity=site.linke_turbidity, altitude_m=site.altitude_m,
    )
    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    energy_wh = float(clear_sky_energy([twin], [day], [day + dt.timedelta(days=1)]).clear_sky_wh[0])
    if not (200.0 < energy_wh < 1000.0 and 0.0 < index.mean[2] <= 1.0):
        raise SystemExit(f"the twin computed {energy_wh:.0f} Wh clear-sky for 100 W in Nairobi, index {index.mean[2]}")
    print(f"twin: {energy_wh:.0f} Wh clear-sky for 100 W in Nairobi on 1 March; March clear-sky index {index.mean[2]}")


def _signature() -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    account = Account.create()
    message = encode_defunct(text="smoke")
    signed = account.sign_message(message)
    if Account.recover_message(message, signature=signed.signature) != account.address:
        raise SystemExit("a signature did not recover its signer")
    print("EIP-191 signature signed and recovered")


def _shared_libraries(layer: Path) -> None:
    """Load every ELF file of the layer; vendored libraries first, as extension modules need them."""
    libraries = sorted(
        (path for path in layer.rglob("*.so*") if path.is_file() and _is_elf(path)),
        key=lambda path: (not path.relative_to(layer).parts[0].endswith(".libs"), str(path)),
    )
    broken = []
    for path in libraries:
        try:
            ctypes.CDLL(str(path), mode=os.RTLD_LAZY | os.RTLD_GLOBAL)
        except OSError as error:
            # A library whose own dependency is not in its wheel (scipy ships one such stray
            # libgfortran) fails the same way untrimmed; trimming removes no shared library
            # outside test folders, so only a damaged file is a failure.
            if "cannot open shared object file" not in str(error):
                broken.append(f"{path.relative_to(layer)}: {error}")
    if broken:
        raise SystemExit("shared libraries that no longer load:\n" + "\n".join(broken))
    print(f"{len(libraries)} shared libraries load")


def _is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"\x7fELF"


if __name__ == "__main__":
    main(*(Path(argument) for argument in sys.argv[1:4]))
