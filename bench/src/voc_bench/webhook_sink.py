"""A webhook receiver for `make bench BENCH_ARGS=--webhook` (#19): one process (uvicorn, uvloop)
that answers every POST 204 at once and counts them; `GET /count` says how many arrived, so the
benchmark can report that the endpoint subscribed to "*" heard the run without the receiver
taking the load generator's loop."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Response

app = FastAPI()
received = {"count": 0}


@app.post("/{path:path}", status_code=204)
async def receive(path: str) -> Response:
    received["count"] += 1
    return Response(status_code=204)


@app.get("/count")
async def count() -> dict[str, int]:
    return received


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, loop="uvloop"
    )
