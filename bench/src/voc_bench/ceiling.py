"""The ceiling for intake throughput: a bare FastAPI POST endpoint on the same machine and the
same server settings (uvicorn, one process, uvloop), doing no work."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/feedback", status_code=202)
async def accept(body: dict[str, object]) -> dict[str, str]:
    return {"id": "0", "status": "received"}


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, loop="uvloop"
    )
