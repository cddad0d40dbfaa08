"""Frontline VoC actions service."""
