"""The staff console: one static page and its script and styles, served from the package
(no build step, no CDN: it works on a provincial network without internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(tags=["console"])

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
#: Only our own script and styles run; what the API returns is inserted as text.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; "
       "connect-src 'self'; frame-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html", headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def mount(app: FastAPI) -> None:
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR), name="console")
