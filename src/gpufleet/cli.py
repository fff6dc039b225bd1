"""The ``gpufleet`` command: thin — load config, call the library, print.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gpufleet import __version__
from gpufleet.errors import ConfigError, GpufleetError

EXAMPLES = """examples:
  gpufleet up                                 # local simulated fleet + gateway
  gpufleet serve -c examples/fleet.yaml       # gateway in front of the fleet's endpoints
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpufleet",
        description="Orchestrate LLM inference on GPU fleets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gpufleet {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible gateway",
        description="Run the gateway in front of the endpoints of a fleet.yaml.",
        epilog="example:\n  gpufleet serve -c examples/fleet.yaml --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("-c", "--config", required=True, help="path to fleet.yaml")
    serve.add_argument("--host", default=None, help="listen address (default: gateway.host)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default: gateway.port)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return run_command(args)
    except ConfigError as exc:
        print(f"gpufleet: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except GpufleetError as exc:
        if args.verbose:
            raise
        print(f"gpufleet: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_command(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    raise AssertionError(args.command)


def _serve(args: argparse.Namespace) -> int:
    import uvloop

    from gpufleet.config import load_config
    from gpufleet.gateway.service import serve

    config = load_config(args.config)
    host = args.host or config.gateway.host
    port = config.gateway.port if args.port is None else args.port
    uvloop.run(serve(config, host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
