"""Length rules per network: what each one counts, its limit, and the reasons a draft is refused."""

import importlib.util
import sys
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign.services import text_rules
from campaign.services.text_rules import (
    ChannelLimits,
    check_for_channels,
    check_text,
    normalised,
)

OUTBOX = ChannelLimits("outbox")
MANUAL = ChannelLimits("manual")
X = ChannelLimits("x")
MASTODON = ChannelLimits("mastodon")
MASTODON_1000 = ChannelLimits("mastodon", max_characters=1000, characters_per_url=23)
BLUESKY = ChannelLimits("bluesky")
ALL = [OUTBOX, MANUAL, X, MASTODON, BLUESKY]

LONG_URL = "https://careers.example.ac.uk/events/2026/spring-fair?utm_source=campaign&ref=" + (
    "a" * 100
)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦, 25 bytes
THUMB_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽
DECOMPOSED_E = "e\u0301"  # é as e + combining acute


def ids(table):
    return [row[0] for row in table]


# (case, text, limits, expected length)
LENGTHS = [
    ("x: a long URL counts 23", LONG_URL, X, 23),
    ("mastodon: a long URL counts 23", LONG_URL, MASTODON, 23),
    ("mastodon: the instance's URL length", LONG_URL, ChannelLimits("mastodon", 1000, 30), 30),
    ("bluesky: a long URL counts in full", LONG_URL, BLUESKY, len(LONG_URL)),
    ("x: CJK weighs 2 each", "日本語", X, 6),
    ("mastodon: CJK counts 1 each", "日本語", MASTODON, 3),
    ("bluesky: CJK counts 1 each", "日本語", BLUESKY, 3),
    ("x: a ZWJ family emoji weighs 2", FAMILY, X, 2),
    ("x: a skin-toned emoji weighs 2", THUMB_MEDIUM, X, 2),
    ("mastodon: a ZWJ family emoji is 1", FAMILY, MASTODON, 1),
    ("bluesky: a ZWJ family emoji is 1 grapheme", FAMILY, BLUESKY, 1),
    ("bluesky: a skin-toned emoji is 1 grapheme", THUMB_MEDIUM, BLUESKY, 1),
    ("x: a decomposed é is 1", DECOMPOSED_E, X, 1),
    ("mastodon: a decomposed é is 1", DECOMPOSED_E, MASTODON, 1),
    ("bluesky: a decomposed é is 1", DECOMPOSED_E, BLUESKY, 1),
    ("outbox: a decomposed é is 1", DECOMPOSED_E, OUTBOX, 1),
    ("manual: a decomposed é is 1", DECOMPOSED_E, MANUAL, 1),
    ("mastodon: a remote mention counts as the local part", "@user@remote.example", MASTODON, 5),
    ("x: a browser's CRLF is one line break", "a\r\nb", X, 3),
    ("outbox: a browser's CRLF is one line break", "a\r\nb", OUTBOX, 3),
]


@pytest.mark.parametrize(("case", "text", "limits", "length"), LENGTHS, ids=ids(LENGTHS))
def test_length_in_the_networks_own_count(case, text, limits, length):
    assert check_text(text, limits).length == length


# (case, text, limits, ok)
VERDICTS = [
    ("x: 280 weighted is allowed", "a" * 280, X, True),
    ("x: 281 weighted is refused", "a" * 281, X, False),
    ("x: 140 CJK characters are 280", "語" * 140, X, True),
    ("x: 141 CJK characters are 282", "語" * 141, X, False),
    ("x: 140 family emoji are 280", FAMILY * 140, X, True),
    ("x: 280 decomposed é are 280", DECOMPOSED_E * 280, X, True),
    ("mastodon: 500 is allowed by default", "a" * 500, MASTODON, True),
    ("mastodon: 501 is refused by default", "a" * 501, MASTODON, False),
    ("mastodon: 1000 is allowed where the instance says so", "a" * 1000, MASTODON_1000, True),
    ("mastodon: 1001 is refused where the instance allows 1000", "a" * 1001, MASTODON_1000, False),
    ("bluesky: 300 graphemes are allowed", "a" * 300, BLUESKY, True),
    ("bluesky: 301 graphemes are refused", "a" * 301, BLUESKY, False),
    ("bluesky: 300 family emoji are graphemes enough", FAMILY * 100, BLUESKY, True),
    ("outbox: 5000 is allowed", "a" * 5000, OUTBOX, True),
    ("outbox: 5001 is refused", "a" * 5001, OUTBOX, False),
    ("outbox: 5000 decomposed é are 5000", DECOMPOSED_E * 5000, OUTBOX, True),
    ("manual: any length is allowed", "a" * 100_000, MANUAL, True),
    ("newline and tab are allowed", "line one\n\tline two", X, True),
]


@pytest.mark.parametrize(("case", "text", "limits", "ok"), VERDICTS, ids=ids(VERDICTS))
def test_verdict_at_the_limit(case, text, limits, ok):
    assert check_text(text, limits).ok is ok


# (case, text, limits, the only problem)
MESSAGES = [
    (
        "x names its weighting",
        "a" * 291,
        X,
        "Too long for X: 291 of 280 characters "
        "(X counts each link as 23 and emoji or CJK characters as 2).",
    ),
    (
        "mastodon with the instance's own limit",
        "a" * 1200,
        MASTODON_1000,
        "Too long for Mastodon: 1200 of 1000 characters "
        "(this instance allows 1000; each link counts as 23).",
    ),
    (
        "mastodon with the default limit",
        "a" * 600,
        MASTODON,
        "Too long for Mastodon: 600 of 500 characters (Mastodon's usual limit of 500; "
        "the instance's own limit has not been read yet; each link counts as 23).",
    ),
    (
        "bluesky without a link",
        "a" * 301,
        BLUESKY,
        "Too long for Bluesky: 301 of 300 characters.",
    ),
    (
        "bluesky says links count in full",
        "a" * 200 + " " + LONG_URL,
        BLUESKY,
        f"Too long for Bluesky: {201 + len(LONG_URL)} of 300 characters. "
        "Bluesky counts each link at its full length.",
    ),
    (
        "bluesky under 300 graphemes but over 3000 bytes",
        FAMILY * 150,
        BLUESKY,
        "Too large for Bluesky: 3750 of 3000 bytes "
        "(emoji and many scripts take several bytes each).",
    ),
    (
        "outbox",
        "a" * 5001,
        OUTBOX,
        "Too long for the outbox: 5001 of 5000 characters.",
    ),
    (
        "a control character",
        "Apply now\x07!",
        MANUAL,
        "The post contains an invisible control character (U+0007) at position 10.",
    ),
    (
        "several control characters",
        "a\x00b\x1bc\x7f",
        OUTBOX,
        "The post contains an invisible control character (U+0000) at position 2 "
        "and 2 more like it.",
    ),
    (
        "a carriage return alone is a line break, not a control character",
        "a\rb",
        OUTBOX,
        None,
    ),
    (
        "an unpaired surrogate",
        "ab\ud800",
        BLUESKY,
        "The post contains a broken character (U+D800) at position 3.",
    ),
    (
        "x refuses a byte order mark",
        "Fair\ufeff today",
        X,
        "The post contains a character X does not accept (U+FEFF) at position 5.",
    ),
]


@pytest.mark.parametrize(("case", "text", "limits", "message"), MESSAGES, ids=ids(MESSAGES))
def test_problem_is_named_with_its_numbers(case, text, limits, message):
    assert check_text(text, limits).problems == ((message,) if message else ())


def test_bluesky_reports_graphemes_and_bytes_as_two_problems():
    problems = check_text(FAMILY * 301, BLUESKY).problems
    assert [p.split(":")[0] for p in problems] == ["Too long for Bluesky", "Too large for Bluesky"]


def test_x_reports_a_refused_character_even_when_too_long():
    problems = check_text("\ufeff" + "a" * 300, X).problems
    assert problems[1:] == (
        "The post contains a character X does not accept (U+FEFF) at position 1.",
    )


@pytest.mark.parametrize("limits", ALL, ids=[limits.kind for limits in ALL])
@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"], ids=["empty", "spaces", "blank lines"])
def test_empty_post_is_refused_everywhere(limits, text):
    check = check_text(text, limits)
    assert (check.ok, check.problems) == (False, ("The post is empty.",))


@pytest.mark.parametrize(
    ("limits", "remaining"),
    [(X, -21), (MASTODON, 209), (MASTODON_1000, 709), (BLUESKY, 9), (OUTBOX, 4709), (MANUAL, None)],
    ids=["x", "mastodon", "mastodon-1000", "bluesky", "outbox", "manual"],
)
def test_remaining_is_limit_minus_length(limits, remaining):
    assert check_text("日" * 10 + "a" * 281, limits).remaining == remaining


def test_unknown_kind_is_a_value_error():
    with pytest.raises(ValueError, match="'myspace'"):
        check_text("hello", ChannelLimits("myspace"))


def test_check_for_channels_answers_once_per_channel_in_order():
    channels = [BLUESKY, X, MASTODON_1000, MASTODON, MANUAL]
    checks = check_for_channels("Careers fair on Thursday", channels)
    assert [(c.kind, c.limit) for c in checks] == [
        ("bluesky", 300),
        ("x", 280),
        ("mastodon", 1000),
        ("mastodon", 500),
        ("manual", None),
    ]


def test_channel_limits_read_from_a_channel_like_object():
    channel = SimpleNamespace(kind="mastodon", max_characters=1000, characters_per_url=30)
    assert ChannelLimits.of(channel) == ChannelLimits("mastodon", 1000, 30)


def test_channel_limits_of_an_object_without_instance_limits():
    assert ChannelLimits.of(SimpleNamespace(kind="x")) == ChannelLimits("x")


@pytest.mark.parametrize(
    ("text", "form"),
    [(DECOMPOSED_E, "\u00e9"), ("a\r\nb\rc", "a\nb\nc"), ("\u212b", "\u00c5")],
    ids=["combining", "line endings", "angstrom sign"],
)
def test_normalised_form_is_nfc_with_newlines(text, form):
    assert normalised(text) == form


NETWORK_MODULES = [
    "campaign.channels.x",
    "campaign.channels.mastodon",
    "campaign.channels.bluesky",
    "tweepy",
    "twitter_text",
    "mastodon",
    "atproto_client",
    "grapheme",
]


def test_importing_the_module_loads_no_network_library(monkeypatch):
    for name in NETWORK_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    spec = importlib.util.spec_from_file_location("text_rules_copy", text_rules.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "text_rules_copy", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    assert module.check_text("hello", module.ChannelLimits("manual")).ok


# The first check of each kind imports that network's library, which can take a second.
@settings(deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=400))
@pytest.mark.parametrize("limits", [*ALL, MASTODON_1000], ids=lambda limits: limits.kind)
def test_any_text_gets_a_consistent_verdict(limits, text):
    check = check_text(text, limits)
    assert check.remaining == (None if check.limit is None else check.limit - check.length)
    assert check.ok is (not check.problems)
    if check.limit is not None and check.length > check.limit:
        assert not check.ok
