"""A stand-in statsd server for the demo: prints every metric line it receives over UDP.

Usage: python3 statsd_receiver.py [HOST] [PORT]   (default 127.0.0.1 18125)
It listens on loopback only, so the demo needs no node/statsd install; point the statsd
plugin's ``host``/``port`` at a real statsd to feed a real dashboard instead.
"""

import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 18125
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind((host, port))
    print(f"statsd receiver listening on udp://{host}:{port}", flush=True)
    while True:
        data, _ = sock.recvfrom(65535)
        for line in data.decode("utf-8", "replace").splitlines():
            print(f"statsd <- {line}", flush=True)
