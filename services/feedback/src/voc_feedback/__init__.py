"""Frontline VoC feedback service."""
