"""Vacancy links: made absolute against xml:base or the source URL, and normalised for matching."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "_hs", "mc_", "pk_", "mtm_")
_TRACKING = frozenset(
    {
        "gclid", "gclsrc", "dclid", "fbclid", "msclkid", "yclid", "twclid", "igshid", "ttclid",
        "li_fat_id", "wbraid", "gbraid", "_ga", "_gl", "mkt_tok", "oly_anon_id", "oly_enc_id",
        "vero_id", "s_cid", "ref_src",
    }
)  # fmt: skip


def absolute_url(link: str, base: str) -> str | None:
    """`link` resolved against `base`; None unless the result is an http(s) URL with a host."""
    link = link.strip()
    if not link:
        return None
    try:
        absolute = link[:8].lower().startswith(("https://", "http://"))
        resolved = urljoin(base.strip(), link) if base and not absolute else link
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return resolved


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING or lowered.startswith(_TRACKING_PREFIXES)


def normalise_url(url: str) -> str | None:
    """A matching key: https, lower-case host without `www.`, default port, path without a
    trailing slash, no fragment, tracking parameters dropped and the rest sorted.

    None when the text is not an http(s) URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    kept = [(k, v) for k, v in query if not _is_tracking(k)]
    return urlunsplit(("https", netloc, path, urlencode(kept), ""))
