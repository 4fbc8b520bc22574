"""Alert templates: user-written Jinja2, rendered in a sandbox into plain-text posts.

A template is checked when it is saved (syntax errors and unknown fields, each named with its
line) and rendered when an alert is made; a rendering error then refuses that one alert with the
reason, it never crashes the planner. The environment is Jinja2's immutable sandbox with:

- autoescape off (posts are plain text, not HTML) and `StrictUndefined` (a misspelt field is an
  error, never an empty string);
- no globals at all (no `range`, `cycler`, `joiner`, `namespace`, `lipsum`, `dict`), no calls of
  any kind (so no methods such as `title.center(10**9)`), no names or attributes beginning with
  an underscore, no `self`, no `extends`/`include`/`import`/`macro`/`call` blocks, at most two
  nested loops;
- a short list of filters (`FILTERS`), string repetition and powers capped, `%` formatting of
  strings refused, and the output capped at `MAX_OUTPUT` characters.

The fields (`FIELDS`) are the same for every alert; a digest template also has `vacancies` (a
list of items with the same fields) and `count`.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import do_truncate
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaign.services.local_time import as_zone
from campaign.services.text_rules import ChannelLimits, TextCheck, check_text, normalised

MAX_BODY = 5000  # characters of template source
MAX_OUTPUT = 10_000  # characters of rendered text
MAX_LOOP_DEPTH = 2
MAX_POWER = 64
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The documented fields of one vacancy, as a template sees them.
FIELDS: dict[str, str] = {
    "title": "The job title.",
    "employer": "The employer's name (may be empty).",
    "location": "Where the job is (may be empty).",
    "url": "The vacancy's address (replaced by a tracked link when published).",
    "salary": "The salary as the source wrote it, e.g. “£27,000 - £31,000 pa” (may be empty).",
    "salary_min": "The lowest salary figure, a whole number when it is one (or empty).",
    "salary_max": "The highest salary figure (or empty).",
    "salary_period": "hour, day, week, month or year (or empty).",
    "closes_on": "The closing date in the organisation's timezone, e.g. “Fri 12 Dec” (or empty).",
    "closes_in_days": "Whole days from today until the closing date (0 = today; or empty).",
    "tags": "The vacancy's tags, a list (join them with |join(', ')).",
    "source": "The name of the source it came from.",
}
DIGEST_FIELDS: dict[str, str] = {
    "vacancies": "Digest templates only: the vacancies, each with the fields above (v.title...).",
    "count": "Digest templates only: how many vacancies are in this digest.",
}
# What `loop` offers inside a for loop (all but the callable ones).
_LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem",
     "nextitem", "depth", "depth0"}
)  # fmt: skip
_REFUSED_BLOCKS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Block: "block",
    nodes.FilterBlock: "filter blocks",
    nodes.With: "with",
}


def _truncate(value: Any, length: int = 100, killwords: bool = False, end: str = "…") -> str:
    """Shorten to `length` characters (the ending included), at a word boundary by default."""
    length = max(len(end) + 1, min(int(length), MAX_OUTPUT))
    return do_truncate(_ENV, str(value), length, killwords, end, 0)


def _money(value: Any) -> str:
    """27000 -> "27,000"; 12.21 -> "12.21"; empty stays empty."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"


FILTERS: dict[str, Callable[..., Any]] = {
    "truncate": _truncate,
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "capitalize": lambda s: str(s).capitalize(),
    "trim": lambda s: str(s).strip(),
    "default": lambda v, d="": v if v not in (None, "") else d,
    "join": lambda items, sep="": str(sep).join(str(i) for i in items),
    "length": len,
    "first": lambda items: next(iter(items), ""),
    "last": lambda items: list(items)[-1] if items else "",
    "money": _money,
    "hashtag": lambda s: (
        "#" + "".join(w[:1].upper() + w[1:] for w in str(s).split() if w.isalnum())
    ),
}


class TemplateRefused(Exception):
    """The template cannot be rendered for this alert; the message says why."""


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for text, times in ((left, right), (right, left)):
                if (
                    isinstance(text, (str, list, tuple))
                    and isinstance(times, int)
                    and len(text) * max(times, 0) > MAX_OUTPUT
                ):
                    raise SecurityError("repeating text that many times is not allowed")
            return operator.mul(left, right)
        if operator_name == "**":
            if not isinstance(right, (int, float)) or abs(right) > MAX_POWER:
                raise SecurityError(f"powers above {MAX_POWER} are not allowed")
            if not isinstance(left, (int, float)) or abs(left) > 10**6:
                raise SecurityError("powers of numbers above a million are not allowed")
            return operator.pow(left, right)
        if operator_name == "%":
            if isinstance(left, str):
                raise SecurityError("% formatting of text is not allowed")
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("calling functions or methods is not allowed in alert templates")


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_ENV = _Sandbox(autoescape=False, undefined=StrictUndefined, finalize=_finalize)
_ENV.globals.clear()
_ENV.filters = dict(FILTERS)
_ENV.tests = {k: v for k, v in _ENV.tests.items() if k in {"defined", "none", "number", "string"}}


@dataclass(frozen=True)
class Preview:
    """A template rendered for a sample vacancy, with each channel's verdict on the text."""

    text: str
    problems: list[str]  # the template's own (empty when it rendered)
    checks: list[tuple[str, TextCheck]]  # (channel name, verdict)


# --- checking at save time -----------------------------------------------------------------


def check_template(body: str, digest: bool = False) -> list[str]:
    """Every reason the template cannot be saved, each naming its line; [] when it is fine."""
    if not body.strip():
        return ["The template is empty."]
    if len(body) > MAX_BODY:
        return [f"The template is too long: at most {MAX_BODY:,} characters."]
    try:
        tree = _ENV.parse(body)
    except TemplateSyntaxError as exc:
        return [f"Line {exc.lineno}: {exc.message or 'syntax error'}."]
    known = set(FIELDS) | (set(DIGEST_FIELDS) if digest else set())
    problems: list[str] = []
    _walk(tree, known, frozenset(), 0, problems)
    return list(dict.fromkeys(problems))


def _walk(
    node: nodes.Node, known: set[str], local: frozenset[str], depth: int, problems: list[str]
) -> None:
    line = getattr(node, "lineno", None) or 1
    for kind, word in _REFUSED_BLOCKS.items():
        if isinstance(node, kind):
            problems.append(f"Line {line}: “{word}” is not allowed in alert templates.")
            return
    if isinstance(node, nodes.Call):
        problems.append(f"Line {line}: calling functions or methods is not allowed.")
        return
    if isinstance(node, nodes.For):
        if node.recursive:
            problems.append(f"Line {line}: recursive loops are not allowed.")
            return
        if depth >= MAX_LOOP_DEPTH:
            problems.append(f"Line {line}: at most {MAX_LOOP_DEPTH} nested loops are allowed.")
            return
        _walk(node.iter, known, local, depth, problems)
        inner = local | _stored_names(node.target) | {"loop"}
        for child in [*node.body, *([node.test] if node.test else [])]:
            _walk(child, known, inner, depth + 1, problems)
        for child in node.else_:
            _walk(child, known, local, depth, problems)
        return
    if isinstance(node, nodes.Assign):
        _walk(node.node, known, local, depth, problems)
        known |= _stored_names(node.target)
        return
    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name.startswith("_"):
            problems.append(f"Line {line}: names starting with “_” are not allowed.")
        elif node.name in DIGEST_FIELDS and node.name not in known:
            problems.append(f"Line {line}: “{node.name}” is only there in digest templates.")
        elif node.name not in known and node.name not in local:
            problems.append(f"Line {line}: unknown field “{node.name}”{_hint(node.name)}.")
        return
    if isinstance(node, nodes.Getattr):
        _check_attribute(node.attr, line, problems)
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        _check_attribute(node.arg.value, line, problems)
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        problems.append(
            f"Line {line}: unknown filter “{node.name}”; use one of {', '.join(sorted(FILTERS))}."
        )
    if isinstance(node, nodes.Test) and node.name not in _ENV.tests:
        problems.append(f"Line {line}: unknown test “{node.name}”.")
    for child in node.iter_child_nodes():
        _walk(child, known, local, depth, problems)


def _check_attribute(name: str, line: int, problems: list[str]) -> None:
    if name.startswith("_"):
        problems.append(f"Line {line}: names starting with “_” are not allowed.")
    elif name not in FIELDS and name not in _LOOP_ATTRIBUTES:
        problems.append(f"Line {line}: unknown field “{name}”{_hint(name)}.")


def _stored_names(target: nodes.Node) -> frozenset[str]:
    return frozenset(n.name for n in target.find_all(nodes.Name)) | (
        frozenset({target.name}) if isinstance(target, nodes.Name) else frozenset()
    )


def _hint(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, [*FIELDS, *DIGEST_FIELDS], n=1)
    return f" (did you mean “{close[0]}”?)" if close else ""


# --- rendering ------------------------------------------------------------------------------


def render(body: str, fields: Mapping[str, Any], digest: bool = False) -> str:
    """The alert text (normalised, stripped); TemplateRefused with the reason on any error."""
    problems = check_template(body, digest)
    if problems:
        raise TemplateRefused(" ".join(problems))
    try:
        template = _ENV.from_string(body)
        pieces: list[str] = []
        size = 0
        for piece in template.generate(**fields):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise TemplateRefused(f"The alert is longer than {MAX_OUTPUT:,} characters.")
            pieces.append(piece)
    except TemplateRefused:
        raise
    except SecurityError as exc:
        raise TemplateRefused(f"Refused by the template sandbox: {exc}.") from None
    except TemplateError as exc:
        raise TemplateRefused(f"The template could not be rendered: {exc}.") from None
    except RecursionError:
        raise TemplateRefused("The template nests too deeply.") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise TemplateRefused(f"The template could not be rendered: {exc}.") from None
    return normalised("".join(pieces)).strip()


def vacancy_fields(
    vacancy: Any, zone: str, now: dt.datetime, source_name: str = ""
) -> dict[str, Any]:
    """The template fields of a Vacancy-like object, dates in the organisation's zone."""
    tz = as_zone(zone)
    closes_at: dt.datetime | None = getattr(vacancy, "closes_at", None)
    closes_on = closes_in = None
    if closes_at is not None:
        local = closes_at.astimezone(tz)
        closes_on = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"
        closes_in = (local.date() - now.astimezone(tz).date()).days
    tags = getattr(vacancy, "tag_list", None)
    if tags is None:
        tags = list(getattr(vacancy, "tags", ()) or ())
    return {
        "title": vacancy.title or "",
        "employer": vacancy.employer or "",
        "location": vacancy.location or "",
        "url": vacancy.url or "",
        "salary": vacancy.salary_text or "",
        "salary_min": _number(vacancy.salary_min),
        "salary_max": _number(vacancy.salary_max),
        "salary_period": vacancy.salary_period or "",
        "closes_on": closes_on,
        "closes_in_days": closes_in,
        "tags": list(tags),
        "source": source_name,
    }


def digest_fields(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"vacancies": items, "count": len(items)}


def _number(value: Decimal | float | int | None) -> int | Decimal | None:
    if value is None:
        return None
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else number


def length_problems(text: str, channels: Iterable[tuple[str, ChannelLimits]]) -> list[str]:
    """Each channel's reasons the rendered text cannot go out there."""
    problems = []
    for name, limits in channels:
        verdict = check_text(text, limits)
        problems += [f"{name}: {p}" for p in verdict.problems]
    return problems


# --- the preview on the rule page -----------------------------------------------------------


@dataclass(frozen=True)
class SampleVacancy:
    """A made-up vacancy for previews (invented employer)."""

    title: str = "Graduate Data Analyst"
    employer: str = "Northwind Analytics"
    location: str = "Leeds (hybrid)"
    url: str = "https://jobs.example.org/vacancies/1042"
    salary_text: str = "£27,000 - £31,000 pa"
    salary_min: Decimal | None = Decimal("27000")
    salary_max: Decimal | None = Decimal("31000")
    salary_period: str | None = "year"
    closes_at: dt.datetime | None = None
    tags: tuple[str, ...] = ("graduate", "data")


def sample(now: dt.datetime, title: str | None = None) -> SampleVacancy:
    """The sample vacancy, closing nine days from `now` at 23:59 UTC."""
    closes = (now + dt.timedelta(days=9)).replace(hour=23, minute=59, second=0, microsecond=0)
    return SampleVacancy(closes_at=closes, title=title or SampleVacancy.title)


def preview(
    body: str,
    channels: Iterable[tuple[str, ChannelLimits]],
    zone: str,
    now: dt.datetime,
    digest: bool = False,
) -> Preview:
    """Render against the sample vacancy (three of them for a digest) and check each channel."""
    one = vacancy_fields(sample(now), zone, now, "Example feed")
    if digest:
        titles = ("Graduate Data Analyst", "Marketing Intern", "Junior Developer")
        items = [vacancy_fields(sample(now, t), zone, now, "Example feed") for t in titles]
        fields = {**one, **digest_fields(items)}
    else:
        fields = one
    try:
        text = render(body, fields, digest)
    except TemplateRefused as exc:
        return Preview("", [str(exc)], [])
    checks = [(name, check_text(text, limits)) for name, limits in channels]
    return Preview(text, [], checks)
