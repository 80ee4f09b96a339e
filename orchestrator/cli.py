"""The `parklink` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

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

    schema = commands.add_parser("schema", help="print the JSON Schema of the config (for editors)")
    schema.set_defaults(handler=_schema)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port")
    command.add_argument("--duration", type=float, default=None, help="stop cleanly after SECONDS")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _run(args: argparse.Namespace) -> int:
    from orchestrator.runtime import Runtime

    kinds = builtin_kinds()
    loaded = load_config(args.config, kinds)
    asyncio.run(Runtime(loaded, kinds, metrics_port=args.metrics_port).run_until_stopped(args.duration))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import DEMO_PARK, run_demo

    port = 9108 if args.metrics_port is None else args.metrics_port
    print(
        f"parklink demo: simulated park starting; metrics at http://127.0.0.1:{port}/metrics"
        + (f" for {args.duration:.0f} s" if args.duration else " (Ctrl-C to stop)"),
        flush=True,
    )
    asyncio.run(run_demo(builtin_kinds(), args.config or DEMO_PARK, port, args.duration))
    return 0


def _validate(args: argparse.Namespace) -> int:
    kinds = builtin_kinds()
    failed = 0
    for path in args.configs:
        try:
            park = load_config(path, kinds).park
        except ConfigError as exc:
            failed += 1
            print(f"{path}: {len(exc.issues)} problem(s)\n{exc}", file=sys.stderr)
            continue
        print(
            f"{path}: valid: {len(park.companies)} companies, {len(park.assets)} assets, "
            f"{len(park.signals)} signals, {len(park.connections)} connections"
        )
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


def _schema(_args: argparse.Namespace) -> int:
    schema = config_model(builtin_kinds()).model_json_schema()
    schema["title"] = "parklink park config"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
