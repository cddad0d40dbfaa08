"""Frontline VoC notify service."""
