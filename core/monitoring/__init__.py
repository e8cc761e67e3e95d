"""Monitoring: reference profiles, drift over live windows, alerts with a lifecycle and sinks.

A domain declares what to watch through :meth:`verticals.core.plugins.Domain.monitoring`
(a :class:`~verticals.core.monitoring.spec.WatchSpec`); core does the rest: it builds and
registers the reference profile (sha256-verified like any artifact), reads the current window
off the request path, compares the two, and raises alerts. See docs/monitoring.md.
"""
