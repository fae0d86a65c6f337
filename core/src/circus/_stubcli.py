"""Command-line entry points that exist before their implementation lands."""

import argparse

from circus import __version__


def stub_main(prog: str, description: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.parse_args()
    parser.exit(1, f"{prog}: not implemented yet\n")
