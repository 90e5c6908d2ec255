"""The runtime: the plan contract, the one executor and its schedulers.

A generated plan needs only this package to run. It imports nothing from ``compiler`` or ``xcs``.
"""
