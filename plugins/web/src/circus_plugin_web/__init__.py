"""The web dashboard for circus: circusd's watchers, processes and events live in a browser.

Watchers and plugins with their state, processes with pid, uptime, restarts, cpu and memory
(with a chart), recent events and a process's output, pushed to the page as they happen;
buttons send start, stop, restart, reload, incr, decr and signal through the plugin's own
identity. ``[circus] httpd = true`` or ``[plugin:web] use = web`` starts it; docs/web.md.
"""

from circus_plugin_web.plugin import WebDashboard

__all__ = ["WebDashboard"]
