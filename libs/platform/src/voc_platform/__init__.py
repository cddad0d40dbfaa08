"""Shared runtime for the Frontline VoC services."""
