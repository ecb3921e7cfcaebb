"""The baseline server: a FastAPI app with one no-op route that validates the same model
as ``POST /v1/declarations`` and answers 202, served by ``ingest_api.main.serve`` with the
same uvicorn settings as the real API. ``BENCH_NOOP_PORT=... python -m benchmarks.noop_api``."""

from __future__ import annotations

import os

from fastapi import FastAPI, status

from ingest_api.main import serve
from vhc_common.schemas import DeclarationIn

app = FastAPI()


@app.post("/noop", status_code=status.HTTP_202_ACCEPTED)
async def noop(body: DeclarationIn) -> dict[str, str]:
    return {"declaration_id": str(body.declaration_id), "status": "accepted"}


if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(os.environ["BENCH_NOOP_PORT"]))
