"""Benchmarks of Frontline VoC (docs/BENCHMARKS.md). They import the services' libraries and
the `voc` tool (tools/cli); nothing imports them."""
