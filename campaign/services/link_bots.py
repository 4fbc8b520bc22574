"""Who is not a person: the one table that decides whether a tracked-link hit is a click.

Every network fetches a link's preview when a post is published, and every Mastodon instance
that sees a post fetches it again, so one post can bring dozens of fetches before anyone clicks.
Those fetchers, search crawlers, link checkers and scripted HTTP clients are recorded as bot hits
(kept apart for inspection, never counted). Decisions:

- A HEAD request is never a click: browsers follow a link with GET; HEAD comes from checkers.
- A request without a user agent is a bot: every browser sends one.
- Scripted clients (curl, Wget, python-requests, Go, Java...) are bots: a person clicking a link
  in a post uses a browser, and the careers service's own checks should not inflate clicks.
- Rules are tried in order and the first match names the bot, so the named fetchers come before
  the generic "+http URL in the user agent" and "...bot" rules that would also match them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

HEAD_REQUEST = "HEAD request"
NO_USER_AGENT = "No user agent"
# What is stored of a user agent (long ones are truncated, never rejected).
MAX_USER_AGENT = 300

Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class BotRule:
    name: str
    matches: Matcher
    reason: str


def _pattern(expression: str, flags: int = re.IGNORECASE) -> Matcher:
    compiled = re.compile(expression, flags)
    return lambda agent: compiled.search(agent) is not None


def _mastodon(agent: str) -> bool:
    # "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)": an instance fetching a preview.
    return "Mastodon/" in agent and "+http" in agent


# (name, matcher, reason): the whole classification. tests/services/test_link_bots.py holds a
# real user agent for every row.
BOT_RULES: tuple[BotRule, ...] = (
    BotRule("X", _pattern(r"^Twitterbot/"), "X's card fetcher (others borrow its name later on)"),
    BotRule(
        "Facebook",
        _pattern(r"facebookexternalhit|Facebot|facebookcatalog|meta-externalagent"),
        "Facebook's and Instagram's link-preview fetcher (also used by iMessage)",
    ),
    BotRule("LinkedIn", _pattern(r"LinkedInBot"), "LinkedIn's link-preview fetcher"),
    BotRule(
        "Slack",
        _pattern(r"Slackbot|Slack-ImgProxy"),
        "Slack's link expander and image proxy",
    ),
    BotRule("Discord", _pattern(r"Discordbot"), "Discord's embed fetcher"),
    BotRule("Telegram", _pattern(r"TelegramBot"), "Telegram's link-preview fetcher"),
    BotRule("Bluesky", _pattern(r"Cardyb"), "Bluesky's card fetcher (cardyb)"),
    BotRule(
        "Mastodon",
        _mastodon,
        "a Mastodon instance fetching the preview (every instance that sees the post does)",
    ),
    BotRule("WhatsApp", _pattern(r"^WhatsApp/"), "WhatsApp's link-preview fetcher"),
    BotRule(
        "Microsoft Teams and Skype",
        _pattern(r"SkypeUriPreview|MicrosoftPreview|Teams/\S+ ?\(preview\)"),
        "Teams' and Skype's link-preview fetcher",
    ),
    BotRule(
        "Google",
        _pattern(r"Googlebot|Google-InspectionTool|GoogleOther|AdsBot-Google|Google-PageRenderer"),
        "Google's crawlers",
    ),
    BotRule("Bing", _pattern(r"bingbot|BingPreview|msnbot"), "Bing's crawler and previews"),
    BotRule("Apple", _pattern(r"Applebot"), "Apple's crawler"),
    BotRule(
        "Link checker",
        _pattern(r"W3C-checklink|LinkChecker|linkcheck|Link ?Validator|UptimeRobot|Pingdom"),
        "a link checker or uptime monitor",
    ),
    BotRule(
        "Scripted client",
        _pattern(
            r"^(?:curl|Wget|python-requests|python-urllib|Python/|python-httpx|aiohttp|"
            r"Go-http-client|okhttp|Java/|Apache-HttpClient|libwww-perl|node-fetch|axios|undici|"
            r"PostmanRuntime|HTTPie)"
        ),
        "an HTTP library or command-line tool, not a browser",
    ),
    BotRule(
        "Headless browser",
        _pattern(r"HeadlessChrome|PhantomJS|Lighthouse", 0),
        "an automated browser",
    ),
    BotRule(
        "Crawler",
        # Case-sensitive "...bot"/"...Bot" after a letter or digit, so a "CUBOT" phone is a phone.
        _pattern(
            r"[a-z0-9](?:bot|Bot)\b|\bBot\b|[Cc]rawler|[Ss]pider|[Ss]lurp|[Ff]etcher|\+https?://",
            0,
        ),
        "a crawler: it names itself a bot, crawler or spider, or gives a URL about itself",
    ),
)


def classify(method: str, user_agent: str | None) -> str | None:
    """The bot's name if this request is not a person's click, else None."""
    if method.upper() == "HEAD":
        return HEAD_REQUEST
    agent = (user_agent or "").strip()
    if not agent:
        return NO_USER_AGENT
    for rule in BOT_RULES:
        if rule.matches(agent):
            return rule.name
    return None
