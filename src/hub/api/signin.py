"""Staff sign-in for the hub's pages: a token checked once and kept in an HttpOnly cookie."""

from __future__ import annotations

import urllib.parse
from html import escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from hub.api.auth import PUBLIC, TOKEN_COOKIE, StaffTokens
from hub.api.context import context_of
from hub.api.html import lang_of, page
from hub.messages import ui

router = APIRouter(include_in_schema=False)


@router.get("/ui/signin")
async def signin_form(request: Request, refused: bool = False) -> Response:
    """The sign-in form (a staff token)."""
    lang = lang_of(request)
    note = f'<p class="error">{escape(ui("hub.ui.signin.refused", lang))}</p>' if refused else ""
    body = (
        f"{note}<p>{escape(ui('hub.ui.signin.prompt', lang))}</p>"
        '<form method="post" action="/ui/signin" class="signin">'
        f"<label>{escape(ui('hub.ui.signin.token', lang))} "
        '<input type="password" name="token" autocomplete="off" maxlength="200" required></label> '
        f'<button type="submit">{escape(ui("hub.ui.nav.signin", lang))}</button></form>'
    )
    return page(request, lang, PUBLIC, ui("hub.ui.signin.title", lang), body)


@router.post("/ui/signin")
async def signin(request: Request) -> Response:
    """Check a staff token and keep it in an HttpOnly cookie."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > 4096:
            return RedirectResponse("/ui/signin?refused=true", status_code=303)
    token = (urllib.parse.parse_qs(raw.decode("utf-8", "replace")).get("token") or [""])[0].strip()
    staff: StaffTokens = request.app.state.staff
    if not token or staff.lookup(token) is None:
        return RedirectResponse("/ui/signin?refused=true", status_code=303)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=context_of(request).config.api.tls is not None,
        max_age=12 * 3600,
    )
    return response


@router.get("/ui/signout")
async def signout() -> Response:
    """Forget the token."""
    response = RedirectResponse("/ui/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response
