"""Supervisors: child specs, restart intensity, backoff, and the supervisor actor."""
