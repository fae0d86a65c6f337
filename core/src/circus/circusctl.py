"""The circusctl client entry point."""

from circus._stubcli import stub_main


def main() -> int:
    return stub_main("circusctl", "Send commands to a running circusd.")
