"""Security headers with a per-request CSP nonce, and safe `next` redirects."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g
from secure import (
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    PermissionsPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)


def csp_nonce() -> str:
    """This request's script nonce, created on first use."""
    nonce: str | None = g.get("csp_nonce")
    if nonce is None:
        nonce = secrets.token_urlsafe(16)
        g.csp_nonce = nonce
    return nonce


def _headers_for(nonce: str, hsts: bool) -> Secure:
    csp = (
        ContentSecurityPolicy()
        .default_src("'self'")
        .script_src("'self'", f"'nonce-{nonce}'")
        .style_src("'self'")
        .img_src("'self'", "data:")
        .connect_src("'self'")
        .object_src("'none'")
        .base_uri("'none'")
        .frame_ancestors("'none'")
        .form_action("'self'")
    )
    return Secure(
        csp=csp,
        hsts=StrictTransportSecurity().max_age(63072000).include_subdomains() if hsts else None,
        referrer=ReferrerPolicy().strict_origin_when_cross_origin(),
        xcto=XContentTypeOptions(),
        xfo=XFrameOptions().deny(),
        coop=CrossOriginOpenerPolicy().same_origin(),
        permissions=PermissionsPolicy().geolocation().camera().microphone(),
    )


def install_security_headers(app: Flask, hsts: bool) -> None:
    @app.after_request
    def _set_headers(response: Response) -> Response:
        # g.get, not g.csp_nonce: CSRF may abort before any template asked for a nonce.
        _headers_for(csp_nonce(), hsts).set_headers(response)
        return response

    app.jinja_env.globals["csp_nonce"] = csp_nonce


def safe_next(target: str | None, fallback: str) -> str:
    """`target` if it is a path on this site, else `fallback` (no open redirects)."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return fallback
    return target
