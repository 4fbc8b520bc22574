"""Text clean-up shared by the parsers and the normaliser: decode once, sanitise, plain text."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A tag never spans another "<", so a "<" without its ">" costs one short scan, not quadratic.
_TAG = re.compile(r"<[a-zA-Z/!](?:[^<>\"']|\"[^\"<]*\"|'[^'<]*')*>")
_RELATIVE_URL = re.compile(r'(?P<attr>\shref=")(?!https?:|mailto:|#)(?P<url>[^"]*)"', re.IGNORECASE)
_ESCAPED_TAG = re.compile(r"&lt;/?[a-zA-Z][^&]{0,200}?&gt;")
_BREAKS = re.compile(r"<br\s*/?>|</(?:p|li|div|h[1-6]|tr|ul|ol)\s*>", re.IGNORECASE)
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "dl", "dt", "em", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}}
# Built once: `nh3.clean` with these arguments rebuilds the same sanitiser on every call, which
# costs several times the sanitising itself.
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="nofollow noopener noreferrer",
)


def collapse(text: str) -> str:
    """Whitespace (CDATA indentation, newlines, non-breaking spaces) collapsed to single spaces;
    control characters dropped."""
    return " ".join(_CONTROL.sub("", text).split())


def html_to_line(fragment: str) -> str:
    """An HTML (or entity-escaped) fragment as one line of text, entities decoded exactly once."""
    if "<" not in fragment and "&" not in fragment:
        return collapse(fragment)
    return collapse(html.unescape(_TAG.sub(" ", fragment)))


def unescape_markup(fragment: str) -> str:
    """Descriptions whose markup arrived entity-escaped (`&lt;br /&gt;`) and no real tags."""
    if _TAG.search(fragment) is None and _ESCAPED_TAG.search(fragment) is not None:
        return html.unescape(fragment)
    return fragment


def sanitise_html(fragment: str, base_url: str = "") -> str:
    """The description as safe HTML: an allow-list of tags, http(s)/mailto links only, relative
    links resolved against `base_url` (xml:base or the source URL)."""
    fragment = _CONTROL.sub("", fragment)
    if "<" not in fragment and "&" not in fragment and ">" not in fragment:
        return fragment.strip()  # plain text: nothing to sanitise
    cleaned = _CLEANER.clean(unescape_markup(fragment)).strip()
    if base_url and 'href="' in cleaned:
        cleaned = _RELATIVE_URL.sub(lambda m: _resolved(m, base_url), cleaned)
    return cleaned


def _resolved(m: re.Match[str], base_url: str) -> str:
    url = urljoin(base_url, html.unescape(m.group("url")))
    if not url.lower().startswith(("http:", "https:")):
        return ""  # never a link we could not make absolute
    return f'{m.group("attr")}{html.escape(url)}"'


def html_to_text(fragment: str) -> str:
    """Plain text of sanitised HTML: block ends and <br> become newlines, blank lines dropped."""
    marked = _BREAKS.sub("\n", fragment)
    text = html.unescape(_TAG.sub("", marked)) if "<" in marked or "&" in marked else marked
    lines = (collapse(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
