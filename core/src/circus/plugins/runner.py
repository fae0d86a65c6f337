"""The circus-plugin runner entry point."""

from circus._stubcli import stub_main


def main() -> int:
    return stub_main("circus-plugin", "Run a circus plugin against a running circusd.")
