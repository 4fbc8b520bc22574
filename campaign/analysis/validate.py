"""Validation of the compare calculator's JSON input (CONTRACT.md, POST /analysis/compare).

Rules, so that callers get one clear error naming the field:
- The top level must be an object with `arms`; `control_index` (default 0) and
  `alpha` (default 0.05, in (0, 0.5]) are optional.
- 2 to 8 arms, each an object with a non-empty, unique `name`.
- Counts are whole numbers from 0 to 10^12. A float with no fractional part
  (3.0) is accepted as that integer; 3.5, strings, booleans and null are not.
- `posts` is optional. When given, an arm's `impressions` and `clicks` may be
  left out and are then the sums over its posts; when given as well, they must
  equal those sums. A post's `slot` is an optional non-empty string.
- Unknown keys are rejected, so that a typo such as "impresions" is not
  silently ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from campaign.analysis.model import Arm, Post

MAX_COUNT = 10**12
MIN_ARMS, MAX_ARMS = 2, 8
MAX_POSTS_PER_ARM = 10_000
MAX_NAME_LENGTH = 200
DEFAULT_ALPHA = 0.05

_TOP_KEYS = {"arms", "control_index", "alpha"}
_ARM_KEYS = {"name", "impressions", "clicks", "posts"}
_POST_KEYS = {"impressions", "clicks", "slot"}


class AnalysisInputError(ValueError):
    """Bad calculator input; `field` is a JSON path such as `arms[1].clicks`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def load_compare_json(text: str | bytes) -> object:
    """Decode a request body, turning malformed JSON (or NaN, Infinity) into field `body`."""

    def reject_constant(name: str) -> object:
        raise AnalysisInputError("body", f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except AnalysisInputError:
        raise
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise AnalysisInputError("body", f"malformed JSON ({detail})") from None


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnalysisInputError(field, f"must be a whole number, not {_kind(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AnalysisInputError(field, "must be a finite whole number")
        if not value.is_integer():
            raise AnalysisInputError(field, f"must be a whole number, not {value!r}")
    if value < 0:
        raise AnalysisInputError(field, "must not be negative")
    if value > MAX_COUNT:
        raise AnalysisInputError(field, f"must be at most {MAX_COUNT:,}")
    return int(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(value: object, field: str, allowed: set[str]) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise AnalysisInputError(field, f"must be an object, not {_kind(value)}")
    for key in value:
        if key not in allowed:
            where = f"{field}.{key}" if field != "body" else str(key)
            raise AnalysisInputError(where, "unknown field")
    return value


def _post(value: object, field: str) -> Post:
    obj = _object(value, field, _POST_KEYS)
    for key in ("impressions", "clicks"):
        if key not in obj:
            raise AnalysisInputError(f"{field}.{key}", "is required")
    impressions = _count(obj["impressions"], f"{field}.impressions")
    clicks = _count(obj["clicks"], f"{field}.clicks")
    if clicks > impressions:
        raise AnalysisInputError(
            f"{field}.clicks", f"clicks ({clicks:,}) exceed impressions ({impressions:,})"
        )
    slot = obj.get("slot")
    if slot is not None and (not isinstance(slot, str) or not slot.strip()):
        raise AnalysisInputError(f"{field}.slot", "must be a non-empty string")
    return Post(impressions, clicks, slot.strip() if isinstance(slot, str) else None)


def _posts(value: object, field: str) -> tuple[Post, ...]:
    if not isinstance(value, list):
        raise AnalysisInputError(field, f"must be a list, not {_kind(value)}")
    if len(value) > MAX_POSTS_PER_ARM:
        raise AnalysisInputError(field, f"at most {MAX_POSTS_PER_ARM:,} posts per arm")
    return tuple(_post(p, f"{field}[{j}]") for j, p in enumerate(value))


def _total(obj: Mapping[str, object], key: str, field: str, posts: tuple[Post, ...]) -> int:
    """An arm total: given, derived from posts, or both and then equal."""
    summed = sum(getattr(p, key) for p in posts)
    if key not in obj:
        if not posts:
            raise AnalysisInputError(f"{field}.{key}", "is required (or give posts)")
        if summed > MAX_COUNT:
            raise AnalysisInputError(f"{field}.posts", f"{key} add up to more than {MAX_COUNT:,}")
        return int(summed)
    total = _count(obj[key], f"{field}.{key}")
    if posts and total != summed:
        raise AnalysisInputError(
            f"{field}.{key}", f"is {total:,} but the posts add up to {summed:,}"
        )
    return total


def _arm(value: object, field: str) -> Arm:
    obj = _object(value, field, _ARM_KEYS)
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AnalysisInputError(f"{field}.name", "is required and must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise AnalysisInputError(f"{field}.name", f"must be at most {MAX_NAME_LENGTH} characters")
    posts = _posts(obj["posts"], f"{field}.posts") if obj.get("posts") is not None else ()
    impressions = _total(obj, "impressions", field, posts)
    clicks = _total(obj, "clicks", field, posts)
    if clicks > impressions:
        raise AnalysisInputError(
            f"{field}.clicks", f"clicks ({clicks:,}) exceed impressions ({impressions:,})"
        )
    return Arm(name.strip(), impressions, clicks, posts)


def parse_compare_request(data: object) -> tuple[list[Arm], int, float]:
    """Validate decoded JSON into (arms, control_index, alpha) or raise AnalysisInputError."""
    obj = _object(data, "body", _TOP_KEYS)
    if "arms" not in obj:
        raise AnalysisInputError("arms", "is required")
    raw_arms = obj["arms"]
    if not isinstance(raw_arms, list):
        raise AnalysisInputError("arms", f"must be a list, not {_kind(raw_arms)}")
    if not MIN_ARMS <= len(raw_arms) <= MAX_ARMS:
        raise AnalysisInputError(
            "arms", f"must have {MIN_ARMS} to {MAX_ARMS} arms, not {len(raw_arms)}"
        )
    arms = [_arm(a, f"arms[{i}]") for i, a in enumerate(raw_arms)]
    seen: set[str] = set()
    for i, arm in enumerate(arms):
        if arm.name in seen:
            raise AnalysisInputError(f"arms[{i}].name", f"duplicate name '{arm.name}'")
        seen.add(arm.name)
    control = obj.get("control_index", 0)
    if isinstance(control, float) and control.is_integer():
        control = int(control)
    if isinstance(control, bool) or not isinstance(control, int):
        raise AnalysisInputError("control_index", f"must be an integer, not {_kind(control)}")
    if not 0 <= control < len(arms):
        raise AnalysisInputError("control_index", f"must be from 0 to {len(arms) - 1}")
    alpha = obj.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise AnalysisInputError("alpha", f"must be a number, not {_kind(alpha)}")
    if not (math.isfinite(alpha) and 0 < alpha <= 0.5):
        raise AnalysisInputError("alpha", "must be above 0 and at most 0.5")
    return arms, control, float(alpha)
