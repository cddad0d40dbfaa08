"""The `voc` command."""
