"""Dagster side of the platform: one asset per configured source, schedules, partitions, checks, run mirroring.

`dlt_platform.definitions` assembles these modules into the code location `dlt_platform`.
"""
