"""A well-behaved demo process: prints a heartbeat every few seconds until stopped."""

import os
import signal
import sys
import time


def stop(_signum: int, _frame: object) -> None:
    print(f"worker {os.getpid()}: stopping", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
beat = 0
while True:
    print(f"worker {os.getpid()}: heartbeat {beat}", flush=True)
    beat += 1
    time.sleep(10)
