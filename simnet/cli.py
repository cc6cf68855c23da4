"""The ``simnet`` command.

``simnet demo`` runs the echo example (:mod:`simnet.examples.echo`) and
prints its timeline. More commands (trace viewer,
replay, fault exploration) come with the fault and trace work.
"""

from __future__ import annotations

import argparse
import sys

from simnet import __version__


def _cmd_demo(args: argparse.Namespace) -> int:
    from simnet.examples import echo as _demo

    lines = [f"line {i}\n".encode() for i in range(args.lines)]
    events, ok = _demo.run(lines)
    print(f"simnet {__version__} demo: an asyncore echo server and client on real loopback sockets")
    for who, what in events:
        print(f"  {who:>6} | {what}")
    print("result: every byte echoed" if ok else "result: FAILED, bytes missing")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simnet",
        description="asyncore/asynchat on real or simulated networks",
    )
    parser.add_argument("--version", action="version", version=f"simnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run an example dispatcher program and show its timeline")
    demo.add_argument("--lines", type=int, default=3, metavar="N",
                      help="how many lines the client sends (default 3)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if getattr(args, "lines", 1) < 1:
        parser.error("--lines must be at least 1")
    return args.func(args)
