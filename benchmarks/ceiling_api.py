"""The single route's framework ceiling: the real API app (its middlewares, exception
handlers and routes) with one more route, first in its router, that does what
``POST /v1/declarations`` does before the ingest work: the same body model, the front-end
key check and rate limits (``FrontEnd``), the declaration budget and the response model;
no Redis, no pseudonymisation, no Kafka. Served by ``ingest_api.main.serve`` with the
same settings as the API. ``VHC_API_PORT=... python -m benchmarks.ceiling_api`` (and the
API's other ``VHC_*`` settings)."""

from __future__ import annotations

import os

from fastapi import FastAPI, status

from ingest_api.deps import FrontEnd, ServicesDep, charge_declarations
from ingest_api.main import create_app, serve
from ingest_api.models import DeclarationOut
from vhc_common.schemas import DeclarationIn

PATH = "/v1/declarations/ceiling"


def ceiling_app() -> FastAPI:
    app = create_app()

    @app.post(PATH, status_code=status.HTTP_202_ACCEPTED, response_model=DeclarationOut)
    async def ceiling(body: DeclarationIn, services: ServicesDep,
                      who: FrontEnd) -> DeclarationOut:
        charge_declarations(services, who, 1)
        return DeclarationOut(declaration_id=str(body.declaration_id), status="accepted")

    # First in the router, where POST /v1/declarations sits (the declarations router is
    # included first): route matching costs the same.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


if __name__ == "__main__":
    serve(ceiling_app(), host="127.0.0.1", port=int(os.environ["VHC_API_PORT"]))
