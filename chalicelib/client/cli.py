"""`python -m chalicelib.client`: submit signed readings, list and follow, verify — see `--help`.

Exit codes: 0 every line accepted (or the listing/verification succeeded), 1 some lines refused
(or a D-REC that does not verify, or readings still queued at the deadline), 2 a usage error,
an unreadable file or key, or an API that could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..domain.readings import ReadingStatus
from ..services.uploads import FileRefused
from .core import MAX_BATCH, DrecClient, LineResult, SubmitResult
from .files import KeyFileError
from .http import ClientError

API_ENV = "DREC_API_URL"
KEY_ENV = "DREC_API_KEY"
# The summary lists this many refused lines; the report file has them all.
SHOWN_REFUSALS = 50

EPILOG = f"""\
examples:
  export {API_ENV}=http://127.0.0.1:8000 {KEY_ENV}=<source api key>
  python -m chalicelib.client submit readings.csv --sign-key key.txt --report result.json
  python -m chalicelib.client follow readings --report result.json
  python -m chalicelib.client list drecs --owner acc-... --status active
  python -m chalicelib.client verify DREC-KE-SHS-202611-... --rpc http://127.0.0.1:8545

files: CSV with the header device_id,period_start,period_end,energy_wh[,external_id][,signature]
(as POST /uploads takes), or JSON: a list of reading objects, or {{"readings": [...]}}.
key files: a 0x-hex private key, or an Ethereum keystore JSON (password from $DREC_KEY_PASSWORD,
else asked). The API key is read from an environment variable, never from the command line.
exit codes: 0 all accepted / done, 1 some refused (or not verified, or still queued), 2 usage or
connection failure."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m chalicelib.client", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Client of the D-REC registry's HTTP API for aggregators: push (signed) readings in "
                    "batches with retries, list and follow readings, D-RECs and redemptions, verify a D-REC.")
    top.add_argument("--api", default=os.environ.get(API_ENV),
                     help=f"the registry's API URL (default ${API_ENV})")
    top.add_argument("--key-env", default=KEY_ENV, metavar="NAME",
                     help=f"environment variable holding the API key (default {KEY_ENV})")
    top.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    top.add_argument("--retries", type=int, default=5,
                     help="retries of a request after a connection error, timeout, 429 or 5xx (default 5)")
    top.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no retry notices")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="send the readings of a CSV or JSON file",
                                 description="Check, sign and send readings in batches; print a summary.")
    submit.add_argument("file", type=Path, help="CSV or JSON file of readings")
    submit.add_argument("--sign-key", type=Path, metavar="KEY_FILE",
                        help="sign each reading without a signature with this key (0x-hex or keystore JSON)")
    submit.add_argument("--format", choices=("csv", "json"), help="default: from the name and first bytes")
    submit.add_argument("--batch-size", type=int, default=MAX_BATCH,
                        help=f"readings per request, 1 to {MAX_BATCH} (default {MAX_BATCH})")
    submit.add_argument("--report", type=Path, metavar="OUT_JSON",
                        help="write every line's result (reading_id or error) to this JSON file")
    submit.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bar, no retry notices")

    for name, verb in (("list", "list"), ("follow", "poll for new or changed")):
        sub = commands.add_parser(name, help=f"{verb} readings, D-RECs or redemptions (JSON lines)")
        kinds = sub.add_subparsers(dest="kind", required=True, metavar="KIND")
        readings = kinds.add_parser("readings", help="a device's readings, or readings of a status")
        readings.add_argument("--device", help="device id")
        readings.add_argument("--status", choices=[s.value for s in ReadingStatus])
        drecs = kinds.add_parser("drecs", help="D-RECs by owner and characteristics")
        for flag, help_ in (("--owner", "owner account id"), ("--status", "active or redeemed"),
                            ("--country", "ISO country code"), ("--device-type", None), ("--offtaker-type", None),
                            ("--device", "device id"), ("--vintage-from", "YYYY-MM"), ("--vintage-to", "YYYY-MM")):
            drecs.add_argument(flag, help=help_)
        redemptions = kinds.add_parser("redemptions", help="an account's redemptions")
        redemptions.add_argument("--account", required=True, help="account id")
        if name == "follow":
            readings.add_argument("--report", type=Path, metavar="REPORT_JSON",
                                  help="follow the readings a `submit --report` accepted until none is queued")
            readings.add_argument("--id", action="append", default=[], dest="ids", metavar="READING_ID",
                                  help="follow this reading until it is judged (repeatable)")
            for kind in (readings, drecs, redemptions):
                kind.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
                kind.add_argument("--deadline", type=float,
                                  help="stop after this many seconds (default: never, or once all are judged)")

    verify = commands.add_parser("verify", help="verify a D-REC against the chain (chalicelib.verify)")
    verify.add_argument("target", help="a D-REC serial (or an event id, or a redemption id)")
    verify.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    verify.add_argument("--contract", help="ledger contract address (default: the one GET /ledger names)")
    return top


class ReportWriter:
    """The full result as JSON, written as the lines come: accepted lines are never all held in memory."""

    def __init__(self, path: Path) -> None:
        self.file: IO[str] = open(path, "w", encoding="utf-8")
        self.file.write('{"accepted_lines": [')
        self.first = True

    def line(self, outcome: LineResult) -> None:
        if outcome.accepted:
            self.file.write(("\n" if self.first else ",\n") + json.dumps(outcome.to_dict()))
            self.first = False

    def close(self, result: SubmitResult | None, failure: str | None = None) -> None:
        refused = [r.to_dict() for r in result.refused] if result else []
        tail = {**(result.summary() if result else {}), "refused_lines": refused, "failure": failure}
        self.file.write("\n],\n" + json.dumps(tail)[1:] + "\n")
        self.file.close()


def summary_text(result: SubmitResult) -> str:
    retries = f", {result.retries} retr{'y' if result.retries == 1 else 'ies'}" if result.retries else ""
    lines = [f"{result.rows} rows: {result.accepted_count} accepted, {len(result.refused)} refused "
             f"({result.batches} batch{'es' if result.batches != 1 else ''}{retries})"]
    for refused in result.refused[:SHOWN_REFUSALS]:
        error = refused.error or {}
        where = f" [{error.get('field')}]" if error.get("field") else ""
        lines.append(f"line {refused.line}: {error.get('code')}{where}: {error.get('message')}"
                     + ("" if refused.sent else " (not sent)"))
    if len(result.refused) > SHOWN_REFUSALS:
        lines.append(f"... and {len(result.refused) - SHOWN_REFUSALS} more refused lines (see --report)")
    return "\n".join(lines)


def _progress(path: Path, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr,
                disable=quiet or not sys.stderr.isatty())


def run_submit(client: DrecClient, args: argparse.Namespace) -> int:
    report = ReportWriter(args.report) if args.report else None
    bar = _progress(args.file, args.quiet)
    result: SubmitResult | None = None
    partial = SubmitResult()

    def on_batch(sofar: SubmitResult) -> None:
        nonlocal partial
        partial = sofar
        bar.set_postfix(accepted=sofar.accepted_count, refused=len(sofar.refused), refresh=False)

    try:
        result = client.submit_file(args.file, args.format, on_read=bar.update, keep_accepted=False,
                                    on_line=report.line if report else None, on_batch=on_batch)
    except (ClientError, FileRefused) as exc:
        bar.close()
        if partial.batches:
            print(summary_text(partial), file=sys.stdout)
        if report:
            report.close(partial, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    if report:
        report.close(result)
    print(summary_text(result))
    return 0 if result.ok else 1


def _emit(items: Iterable[dict[str, Any]]) -> None:
    for item in items:
        print(json.dumps(item, sort_keys=True), flush=True)


def _listing(client: DrecClient, args: argparse.Namespace) -> tuple[Callable[[], Iterator[dict[str, Any]]], str]:
    if args.kind == "readings":
        if not args.device and not args.status:
            raise ClientError("list readings needs --device or --status")
        return (lambda: client.readings(args.device, args.status)), "reading_id"
    if args.kind == "drecs":
        filters = {"owner_account_id": args.owner, "status": args.status, "country": args.country,
                   "device_type": args.device_type, "offtaker_type": args.offtaker_type, "device_id": args.device,
                   "vintage_from": args.vintage_from, "vintage_to": args.vintage_to}
        return (lambda: client.drecs(**filters)), "serial"
    return (lambda: client.redemptions(args.account)), "redemption_id"


def _reported_ids(path: Path) -> list[str]:
    try:
        report = json.loads(path.read_text())
        return [a["reading_id"] for a in report["accepted_lines"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"{path} is not a report of `submit --report`: {exc}") from exc


def run_follow(client: DrecClient, args: argparse.Namespace) -> int:
    if args.kind == "readings" and (args.report or args.ids):
        ids = args.ids + (_reported_ids(args.report) if args.report else [])
        try:
            _emit(client.judged(ids, args.interval, args.deadline))
        except TimeoutError as exc:
            print(f"deadline: {exc}", file=sys.stderr)
            return 1
        return 0
    listing, key = _listing(client, args)
    _emit(client.follow(listing, key, args.interval, args.deadline))
    return 0


def run_verify(client: DrecClient, args: argparse.Namespace) -> int:
    from ..verify import render

    result = client.verify(args.target, args.rpc, args.contract)
    print(render(result))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.api:
        print(f"error: no API URL: pass --api or set {API_ENV}", file=sys.stderr)
        return 2
    if args.command == "submit" and not 1 <= args.batch_size <= MAX_BATCH:
        print(f"error: --batch-size must be from 1 to {MAX_BATCH}", file=sys.stderr)
        return 2
    if args.command == "submit" and not args.file.is_file():
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    if args.command == "submit" and not os.environ.get(args.key_env):
        print(f"error: submitting needs an API key: set {args.key_env} (or name another variable with --key-env)",
              file=sys.stderr)
        return 2

    def notice(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    try:
        client = DrecClient(args.api, os.environ.get(args.key_env) or None,
                            key_file=getattr(args, "sign_key", None), timeout=args.timeout,
                            retries=max(0, args.retries), batch_size=getattr(args, "batch_size", MAX_BATCH),
                            on_retry=notice)
        if args.command == "submit":
            return run_submit(client, args)
        if args.command == "verify":
            return run_verify(client, args)
        if args.command == "follow":
            return run_follow(client, args)
        _emit(_listing(client, args)[0]())
        return 0
    except (ClientError, KeyFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
