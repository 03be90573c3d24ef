"""Persistence for the platform: devices, registrations, the status event log. Knows nothing of SIP."""
