"""Persistence for the platform: devices, registrations, channels, the status event log. Knows nothing of SIP."""
