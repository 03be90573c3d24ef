"""Vendor conformance report (issue 11): clauses judged on a device's traced traffic and active probes."""
