"""The circusd daemon entry point."""

from circus._stubcli import stub_main


def main() -> int:
    return stub_main("circusd", "Run and supervise the processes described by a config file.")
