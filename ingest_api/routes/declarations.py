"""Declarations from scanning front ends."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from ingest_api.deps import FrontEnd, ServicesDep, charge_declarations, forbidden
from ingest_api.models import BatchIn, BatchItemOut, BatchOut, DeclarationOut
from vhc_common.schemas import DeclarationIn

router = APIRouter(prefix="/v1/declarations", tags=["declarations"])

RETRY_AFTER_S = "2"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeclarationOut,
    responses={
        200: {"model": DeclarationOut, "description": "already accepted earlier (duplicate)"},
        403: {"description": "the checkpoint lies outside the key's area"},
        429: {"description": "rate limit; retry after Retry-After"},
        409: {"description": "the same declaration is being accepted by another request"},
        503: {"description": "the broker cannot take it now; retry after Retry-After"},
    },
)
async def submit_declaration(body: DeclarationIn, services: ServicesDep,
                             who: FrontEnd) -> DeclarationOut | JSONResponse:
    """Accept one declaration: 202 once it is durably in Kafka."""
    charge_declarations(services, who, 1)
    outcome = await services.ingest.submit_one(body, area=who.area)
    match outcome.status:
        case "accepted":
            return DeclarationOut(declaration_id=str(body.declaration_id), status="accepted")
        case "duplicate":
            return JSONResponse(
                DeclarationOut(declaration_id=str(body.declaration_id),
                               status="duplicate").model_dump(),
                status_code=status.HTTP_200_OK,
            )
        case "invalid":
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                [e.as_dict(("body",)) for e in outcome.errors])
        case "forbidden":
            raise forbidden(services, "the checkpoint lies outside this key's area")
        case "in_progress":
            raise HTTPException(status.HTTP_409_CONFLICT,
                                "this declaration is being accepted by another request",
                                headers={"Retry-After": "1"})
        case _:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                "the broker cannot take declarations now; retry later",
                                headers={"Retry-After": RETRY_AFTER_S})


@router.post(
    "/batch",
    response_model=BatchOut,
    responses={429: {"description": "rate limit; retry after Retry-After"},
               503: {"model": BatchOut,
                     "description": "some items could not be published; retry those"}},
)
async def submit_batch(body: BatchIn, services: ServicesDep,
                       who: FrontEnd) -> BatchOut | JSONResponse:
    """Accept up to 500 declarations; the answer gives a status per item. A batch costs
    one request and as many declarations as it holds from the key's budgets (429 with
    ``Retry-After`` when the declaration budget cannot take it whole)."""
    limit = services.settings.batch_max_items
    if len(body.declarations) > limit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "declarations"],
            "msg": f"at most {limit} declarations per batch, got {len(body.declarations)}",
            "type": "too_long",
        }])
    charge_declarations(services, who, len(body.declarations))
    outcomes = await services.ingest.submit(body.declarations, area=who.area)
    items = [
        BatchItemOut(index=i, declaration_id=o.declaration_id, status=o.status,
                     errors=[e.as_dict(("body", "declarations", i)) for e in o.errors])
        for i, o in enumerate(outcomes)
    ]
    result = BatchOut(
        items=items,
        accepted=sum(o.status == "accepted" for o in outcomes),
        duplicate=sum(o.status == "duplicate" for o in outcomes),
        invalid=sum(o.status == "invalid" for o in outcomes),
        forbidden=sum(o.status == "forbidden" for o in outcomes),
        unavailable=sum(o.status in ("unavailable", "in_progress") for o in outcomes),
    )
    if result.unavailable:
        return JSONResponse(result.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": RETRY_AFTER_S})
    return result
