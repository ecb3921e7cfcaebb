"""Printing for a ward at once, and the public keys that verify printed codes."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from ingest_api.deps import ServicesDep, Staff, require_ward
from ingest_api.printing import poster_pdf
from vhc_common.qr import b64url
from vhc_common.wards import UnknownWardError, lookup_ward

router = APIRouter(tags=["printing"])


class QrKey(BaseModel):
    key_id: str
    algorithm: str
    public_key: str  # raw 32-byte Ed25519 key, base64url


class QrKeys(BaseModel):
    format: str
    keys: list[QrKey]


@router.get("/v1/qr/keys", response_model=QrKeys)
async def qr_keys(services: ServicesDep) -> QrKeys:
    """Public keys that verify checkpoint QR codes (no credential needed: they are
    public). A front end verifies ``VHC1:<id>:<key_id>:<signature>`` with the key of that
    id (Ed25519 over ``"vhc-qr/1\\n" + id``)."""
    return QrKeys(format="VHC1:<checkpoint_id>:<key_id>:<signature base64url>",
                  keys=[QrKey(key_id=services.qr.key_id, algorithm="Ed25519",
                              public_key=b64url(services.qr.public_raw))])


@router.get("/v1/posters", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}},
                       404: {"description": "the ward has no checkpoint"}})
async def ward_posters(
    services: ServicesDep, who: Staff,
    ward_code: Annotated[str, Query(pattern=r"^[0-9]{5}$")],
) -> Response:
    """Every checkpoint of a ward, one A4 poster a page, in one PDF."""
    try:
        ward = lookup_ward(ward_code)
    except UnknownWardError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["query", "ward_code"], "msg": str(exc), "type": "unknown_ward"}]) from exc
    require_ward(services, who, ward_code)
    checkpoints = await services.checkpoints.all(ward_code=ward_code)
    if not checkpoints:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no checkpoint is registered in {ward.name} ({ward_code})")
    pdf = await asyncio.to_thread(
        poster_pdf, [(cp, services.qr.payload(cp.checkpoint_id)) for cp in checkpoints])
    return Response(pdf, media_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="posters-{ward_code}.pdf"'})
