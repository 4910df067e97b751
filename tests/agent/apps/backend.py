"""Service "backend": FastAPI under uvicorn, heron.init() configured by HERON_* variables.

Usage: python backend.py PORT
"""

import asyncio
import sys

from fastapi import FastAPI  # imported before init: order must not matter

import heron

heron.init()

import uvicorn  # noqa: E402

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, object]:
    await asyncio.sleep(0.05)
    return {"item": item_id}


@app.get("/health")
async def health() -> str:
    return "ok"


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
