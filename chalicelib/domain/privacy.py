"""What the public may see: coarse device locations, salted location commitments, credential-free URLs.

Everything anchored on the chain is public for ever, so a household's exact location never
goes there: the anchored `DeviceRegistered` body holds coordinates rounded to 0.01° (about
1.1 km) and `location_commitment`, a SHA-256 over the canonical JSON of the exact coordinates
and a 32-byte random salt that only the owner (its sources, the operator) can read. The owner
proves the exact location later by revealing coordinates and salt; anyone recomputes the hash:

    python -m chalicelib.domain.privacy LATITUDE LONGITUDE SALT [COMMITMENT]

The hashed bytes are `canonical_json({"latitude": lat, "longitude": lon, "salt": salt})`
(sorted keys, no whitespace) with both coordinates as JSON floats written the way Python
writes them (`repr`: -1.29, 36.0, 1e-05), e.g. `{"latitude":-1.29,"longitude":36.82,"salt":"ab…"}`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from urllib.parse import urlsplit

from .ledger.canonical import canonical_json

#: Decimal places of a public coordinate: 0.01° is about 1.1 km, a village rather than a roof.
COORDINATE_DECIMALS = 2
SALT_BYTES = 32


def round_coordinate(value: float) -> float:
    """A latitude or longitude [°] rounded to 0.01°, as the public sees it."""
    # `+ 0.0` turns -0.0 into 0.0, so a point just south of the equator does not print as "-0.0".
    return round(float(value), COORDINATE_DECIMALS) + 0.0


def new_location_salt() -> str:
    """32 random bytes as 64 hex digits: too many to guess the exact location from the commitment."""
    return secrets.token_hex(SALT_BYTES)


def location_commitment(latitude: float, longitude: float, salt: str) -> str:
    """SHA-256 hex of the canonical JSON of the exact coordinates [°] and the salt."""
    document = {"latitude": float(latitude), "longitude": float(longitude), "salt": salt}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def opens(commitment: str, latitude: float, longitude: float, salt: str) -> bool:
    """True when (latitude, longitude, salt) is the opening of `commitment`."""
    return hmac.compare_digest(location_commitment(latitude, longitude, salt).encode(), commitment.lower().encode())


def public_rpc_hint(rpc_url: str | None, public_rpc: str | None = None) -> str | None:
    """The chain endpoint as the public may see it.

    `public_rpc` (DREC_CHAIN_RPC_PUBLIC) is the operator's own choice and is shown as given.
    Otherwise only `scheme://host[:port]` of the private URL: providers put API keys in the user
    info, the path (`/v3/<key>`) or the query (`?apikey=`), and none of those may be published.
    Anything that does not parse as such a URL gives None rather than a guess.
    """
    if public_rpc:
        return public_rpc
    if not rpc_url:
        return None
    try:
        parts = urlsplit(rpc_url.strip())
        port = parts.port
    except ValueError:  # e.g. a port that is not a number
        return None
    host = parts.hostname
    if not parts.scheme or not host or parts.scheme not in ("http", "https", "ws", "wss"):
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def main(argv: list[str]) -> int:
    """Print the commitment of an opening; with a commitment given, exit 0 only when it opens."""
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[0] if __doc__ else "", file=sys.stderr)
        print("usage: python -m chalicelib.domain.privacy LATITUDE LONGITUDE SALT [COMMITMENT]", file=sys.stderr)
        return 2
    try:
        latitude, longitude = float(argv[0]), float(argv[1])
    except ValueError:
        print("LATITUDE and LONGITUDE must be numbers in degrees", file=sys.stderr)
        return 2
    computed = location_commitment(latitude, longitude, argv[2])
    print(computed)
    if len(argv) == 4:
        ok = opens(argv[3], latitude, longitude, argv[2])
        print("OPENS: the commitment is of these coordinates and salt" if ok else
              "DOES NOT OPEN: other coordinates or another salt")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
