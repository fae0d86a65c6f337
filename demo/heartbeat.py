"""A demo process that tells the watchdog plugin it is alive: one UDP datagram a second.

Freeze it (``kill -STOP <pid>``) to play a hung process: it stays alive but silent, and the
watchdog has it killed (circusd then starts a fresh one).
"""

import os
import socket
import sys
import time

address = ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 1664)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    # the format of Circus 0.19's watchdog: "<pid>;<timestamp>"
    sock.sendto(f"{os.getpid()};{time.time()}".encode(), address)
    time.sleep(1)
