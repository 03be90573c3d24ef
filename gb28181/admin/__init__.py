"""The admin API (aiohttp): JSON over HTTP with bearer tokens; the CLI is its client."""
