"""Process statistics: one sampler thread off the event loop, and the stats stream.

``proc`` reads Linux's ``/proc`` (one scan of every process per round), ``cpu`` turns CPU
times into percentages, ``sampler`` owns the thread that does both, ``report`` shapes samples
into the contract's ``stats``/``dstats`` replies and ``stat.*`` messages, and ``stream`` is the
task that owns the stats PUB socket. See docs/stats.md.
"""

from circus.stats.sampler import Sample, Sampler

__all__ = ["Sample", "Sampler"]
