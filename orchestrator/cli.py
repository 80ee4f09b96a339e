"""The `parklink` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import Engine

from connectors.base import ConnectorKind
from models.park import Park
from orchestrator.config import ConfigError, config_model, load_config
from orchestrator.registry import builtin_kinds


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `parklink` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"parklink: invalid config ({len(exc.issues)} problem(s)):\n{exc}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parklink", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a park config until interrupted")
    run.add_argument("config", type=Path)
    run.add_argument(
        "--role",
        choices=["all", "edge", "hub"],
        default="all",
        help="all: one process for the whole park (default); edge: this config's companies, "
        "publishing to the hub through the mqtt: broker; hub: the park rebuilt from its edges",
    )
    _add_run_options(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="simulate a park of 3 companies and run parklink against it")
    demo.add_argument(
        "--config", type=Path, default=None, help="another park to simulate (default: the demo park)"
    )
    _add_run_options(demo)
    demo.set_defaults(handler=_demo)

    validate = commands.add_parser("validate", help="check config files; exit 0 when all are valid")
    validate.add_argument("configs", type=Path, nargs="+")
    validate.add_argument(
        "--explain",
        action="store_true",
        help="also show what each connection will send (requests, subscriptions)",
    )
    validate.set_defaults(handler=_validate)

    kpi = commands.add_parser("kpi", help="compute KPIs from recorded samples (CSV) for a time range")
    kpi.add_argument("--config", type=Path, required=True)
    kpi.add_argument("--samples", type=Path, required=True, help="CSV: timestamp,asset,signal,value,quality")
    kpi.add_argument("--from", dest="start", required=True, help="ISO 8601 with offset, or POSIX seconds")
    kpi.add_argument("--to", dest="end", required=True)
    kpi.add_argument(
        "--window",
        default="custom",
        choices=["custom", "shift", "hour", "day"],
        help="custom: exactly [from, to); else every such window inside the range",
    )
    kpi.add_argument("--json", action="store_true", help="JSON instead of a table")
    kpi.set_defaults(handler=_kpi)

    record = commands.add_parser(
        "record", help="run a park config and record its samples as the CSV that `kpi --samples` reads"
    )
    record.add_argument("config", type=Path)
    record.add_argument("--out", type=Path, required=True, help="the CSV to write")
    existing = record.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    existing.add_argument(
        "--append", action="store_true", help="add to --out if it is a recording (one header)"
    )
    _add_run_options(record)
    record.set_defaults(handler=_record)

    browse = commands.add_parser(
        "browse", help="walk an OPC UA server's address space and print bindings to paste into a config"
    )
    from connectors.opcua import browse as opcua_browse

    opcua_browse.add_arguments(browse)
    browse.set_defaults(handler=lambda args: asyncio.run(opcua_browse.run(args)))

    token = commands.add_parser("token", help="API tokens: create, list, revoke")
    token_commands = token.add_subparsers(required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="create a token (printed once; stored hashed)")
    create.add_argument("--config", type=Path, required=True, help="the park config (for its database)")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--company", help="a company token (with --role)")
    who.add_argument("--park", action="store_true", help="a park operator token (sees what companies share)")
    who.add_argument("--admin", action="store_true", help="an administrator token (sees everything)")
    create.add_argument("--role", choices=["viewer", "operator"], default="viewer", help="for --company")
    create.add_argument("--name", default="", help="a note to recognise the token by")
    create.set_defaults(handler=_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--config", type=Path, required=True)
    listing.set_defaults(handler=_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("--config", type=Path, required=True)
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_token_revoke)

    schema = commands.add_parser("schema", help="print the JSON Schema of the config (for editors)")
    schema.set_defaults(handler=_schema)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port")
    command.add_argument(
        "--http-port", type=int, default=None, help="serve the API and dashboard on this port"
    )
    command.add_argument("--duration", type=float, default=None, help="stop cleanly after SECONDS")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _run(args: argparse.Namespace) -> int:
    from orchestrator.config import check_role
    from orchestrator.runtime import Runtime, run_until_stopped

    kinds = builtin_kinds()
    loaded = load_config(args.config, kinds)
    check_role(loaded, args.role)
    for warning in loaded.warnings:
        logging.getLogger("parklink.config").warning("%s", warning)
    if args.role == "hub":
        from orchestrator.hub.runtime import HubRuntime

        hub = HubRuntime(loaded, metrics_port=args.metrics_port, http_port=args.http_port)
        asyncio.run(run_until_stopped(hub, args.duration))
        return 0
    runtime = Runtime(loaded, kinds, metrics_port=args.metrics_port, http_port=args.http_port, role=args.role)
    asyncio.run(runtime.run_until_stopped(args.duration))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import DEMO_PARK, run_demo

    port = 9108 if args.metrics_port is None else args.metrics_port
    print(
        f"parklink demo: simulated park starting; metrics at http://127.0.0.1:{port}/metrics"
        + (f" for {args.duration:.0f} s" if args.duration else " (Ctrl-C to stop)"),
        flush=True,
    )
    asyncio.run(run_demo(builtin_kinds(), args.config or DEMO_PARK, port, args.duration, args.http_port))
    return 0


def _validate(args: argparse.Namespace) -> int:
    kinds = builtin_kinds()
    failed = 0
    for path in args.configs:
        try:
            loaded = load_config(path, kinds)
        except ConfigError as exc:
            failed += 1
            print(f"{path}: {len(exc.issues)} problem(s)\n{exc}", file=sys.stderr)
            continue
        park = loaded.park
        print(
            f"{path}: valid: {len(park.companies)} companies, {len(park.assets)} assets, "
            f"{len(park.signals)} signals, {len(park.connections)} connections"
        )
        for warning in loaded.warnings:  # valid all the same: the exit code stays 0
            print(f"warning: {warning}", file=sys.stderr)
        if args.explain:
            _explain(park, kinds)
    return 1 if failed else 0


def _explain(park: Park, kinds: Mapping[str, ConnectorKind]) -> None:
    from orchestrator.runtime import bound_signals

    for ref in park.connections:
        explain = kinds[ref.kind].explain
        signals = bound_signals(park, ref)
        print(f"\n{ref.company}/{ref.id} ({ref.kind}, {len(signals)} signals)")
        text = explain(ref.settings, signals) if explain else "(this connector kind has nothing to explain)"
        print("\n".join(f"  {line}" for line in text.splitlines()))


def _kpi(args: argparse.Namespace) -> int:
    from orchestrator.replay import ReplayError, parse_time, replay

    park = load_config(args.config, builtin_kinds()).park
    try:
        start, end = parse_time(args.start), parse_time(args.end)
        done = replay(park, args.samples)
    except (ReplayError, ValueError) as exc:
        print(f"parklink kpi: {exc}", file=sys.stderr)
        return 2
    results = done.results(args.window, start, end)
    if args.json:
        rows = [
            {
                "level": r.level,
                "scope": r.scope or park.id,
                "window": r.window_label,
                "start": r.start,
                "end": r.end,
                **r.result.as_dict(),
                "suspect": list(r.suspect),
            }
            for r in results
        ]
        print(json.dumps({"samples": done.samples, "results": rows}, indent=2))
        return 0
    columns = ("availability", "effectiveness", "quality", "oee", "mtbf", "mttr", "coverage")
    print(f"{done.samples} samples; {len(results)} results")
    print(f"{'window':<28} {'level':<8} {'scope':<40} " + " ".join(f"{c[:12]:>12}" for c in columns))
    for r in results:
        cells = " ".join(_cell(getattr(r.result, c)) for c in columns)
        flag = f"  suspect: {'; '.join(r.suspect)}" if r.suspect else ""
        print(f"{r.window_label[:28]:<28} {r.level:<8} {(r.scope or park.id)[:40]:<40} {cells}{flag}")
    return 0


def _record(args: argparse.Namespace) -> int:
    from orchestrator.config import check_role
    from orchestrator.record import Mode, Recorder, RecordError, Recording

    kinds = builtin_kinds()
    loaded = load_config(args.config, kinds)
    check_role(loaded, "all")
    for warning in loaded.warnings:
        logging.getLogger("parklink.config").warning("%s", warning)
    mode: Mode = "append" if args.append else "overwrite" if args.force else "new"
    try:
        recorder = Recorder.open(loaded.park, args.out, mode)
    except RecordError as exc:
        print(f"parklink record: {exc}", file=sys.stderr)
        return 2
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    print(f"parklink record: recording {args.config} into {args.out} {until}", flush=True)
    recording = Recording(loaded, kinds, recorder, metrics_port=args.metrics_port, http_port=args.http_port)
    asyncio.run(recording.run(args.duration))
    print(f"parklink record: {recorder.summary()}", flush=True)
    return 1 if recorder.error else 0


def _cell(value: float | None) -> str:
    return f"{'—':>12}" if value is None else f"{value:>12.4f}"


def _token_database(config: Path) -> Engine:
    from models.store import make_engine

    loaded = load_config(config, builtin_kinds())
    return make_engine(loaded.http.token_database or loaded.database_url)


def _token_create(args: argparse.Namespace) -> int:
    from exporters.http.tokens import create_token

    if args.company is not None:
        loaded_park = load_config(args.config, builtin_kinds()).park
        # A hub's config lists no companies (its edges announce them): any company id is taken.
        if loaded_park.companies and args.company not in loaded_park.companies:
            print(f"parklink token: no company {args.company!r} in {args.config}", file=sys.stderr)
            return 2
    role = args.role if args.company else ("park" if args.park else "admin")
    print(create_token(_token_database(args.config), role, args.company, args.name))
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from exporters.http.tokens import list_tokens

    for info in list_tokens(_token_database(args.config)):
        print(info)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from exporters.http.tokens import revoke_token

    if revoke_token(_token_database(args.config), args.id):
        print(f"token {args.id} revoked")
        return 0
    print(f"parklink token: no valid token {args.id}", file=sys.stderr)
    return 1


def _schema(_args: argparse.Namespace) -> int:
    schema = config_model(builtin_kinds()).model_json_schema()
    schema["title"] = "parklink park config"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
