"""The notify plugin for circus: e-mail and webhook alerts when a watcher flaps, crashes,
stops unexpectedly or recovers; one alert per incident, rate-limited.

``incidents`` turns events into alerts (pure), ``gate`` rate-limits them (pure), ``alert``
formats them, ``channels`` delivers them (SMTP, HTTP POST), ``plugin`` wires it to circusd.
"""

from circus_plugin_notify.plugin import Notify

__all__ = ["Notify"]
