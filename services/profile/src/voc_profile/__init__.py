"""Frontline VoC profile service."""
