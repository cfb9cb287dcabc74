"""Implementation impact (issue 15): interrupted time series and staggered
difference-in-differences.

Pure functions: a pandas DataFrame in, dataclasses and plain dicts out. The `knowdo evaluate`
command (knowdo.impact.cli) and, later, the impact marts call the same functions:
knowdo.impact.its.interrupted_time_series, knowdo.impact.did.staggered_did and
knowdo.impact.comparative (controlled ITS, change in a gap).
docs/impact-methods.md describes the methods and how to read each number.
"""
