"""circus-top: a terminal dashboard of circusd's watchers and processes (``circus-top``).

:mod:`~circus.top.model` holds what is shown, :mod:`~circus.top.feeds` keeps it current from
the stats stream, the event channel and the control channel, :mod:`~circus.top.app` draws it
with urwid, :mod:`~circus.top.cli` is the command line.
"""
