"""The benchmark's phones: a push-service emulator in its own process (so decrypting pushes
does not compete with the load generator for one interpreter). Pushes are dumped in arrival
order; `updates` tells a repeat-complaint update (1, 2, ...) from a re-send of the same state.

Protocol on stdin/stdout, one JSON object per line:
  -> {"op": "subscribe", "label": "..."}  <- {"subscription": {...}}
  -> {"op": "dump"}  <- {"received": [[label, feedback_id, alert_id, t, updates], ...],
                         "undecryptable": n}

The emulator answers each push once its headers and VAPID token check out and stamps its
arrival then; it decrypts the pushes when they are dumped (between steps and while draining),
so the phones' ECDH and AES work does not compete for the cores during the offered load.
  -> {"op": "quit"}
"""

from __future__ import annotations

import json
import sys

from voc_cli.push_emulator import PushEmulator


def main() -> int:
    emulator = PushEmulator(defer_decryption=True).start()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "subscribe":
                reply: dict[str, object] = {"subscription": emulator.new_subscription(label=request["label"])}
            elif request["op"] == "dump":
                reply = {
                    "received": [
                        [
                            p.label,
                            (p.json or {}).get("feedback_id"),
                            (p.json or {}).get("alert_id"),
                            p.received_at,
                            (p.json or {}).get("updates"),  # the alert's update count at send time
                        ]
                        for p in emulator.received()
                    ],
                    "undecryptable": emulator.undecryptable,
                }
            else:
                break
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
