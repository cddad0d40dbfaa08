"""The local push-service emulator lives in voc_cli (the demo phone and `make bench` use it)."""

from voc_cli.push_emulator import PushEmulator, ReceivedPush

__all__ = ["PushEmulator", "ReceivedPush"]
