"""A demo process that crashes on purpose a moment after it starts (exit status 3).

circusd respawns it at once; after a few quick crashes the flapping plugin stops the watcher,
starts it again later, and finally leaves it stopped (see demo/README.md).
"""

import sys
import time

print("crasher: starting, and about to crash", flush=True)
time.sleep(0.5)
sys.exit(3)
