"""The bot table: a real user agent for every row, and real browsers that are people."""

from __future__ import annotations

import pytest

from campaign.services.link_bots import BOT_RULES, HEAD_REQUEST, NO_USER_AGENT, classify

BOTS = [
    ("X", "Twitterbot/1.0"),
    ("Facebook", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
    ("Facebook", "Mozilla/5.0 (compatible; Facebot/1.0; +https://developers.facebook.com/docs/sharing/webmasters/crawler)"),
    ("Facebook", "facebookexternalhit/1.1 Facebot Twitterbot/1.0"),  # iMessage's preview
    ("Facebook", "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)"),
    ("LinkedIn", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"),
    ("Slack", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
    ("Slack", "Slack-ImgProxy (+https://api.slack.com/robots)"),
    ("Discord", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
    ("Telegram", "TelegramBot (like TwitterBot)"),
    ("Bluesky", "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)"),
    ("Mastodon", "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)"),
    ("Mastodon", "http.rb/4.4.1 (Mastodon/3.5.3; +https://fosstodon.org/) Bot"),
    ("Mastodon", "Mastodon/4.3.0 (http.rb/5.2.0; +https://hachyderm.io/)"),
    ("WhatsApp", "WhatsApp/2.23.20.0 A"),
    ("WhatsApp", "WhatsApp/2.2407.3 i"),
    ("Microsoft Teams and Skype", "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"),
    ("Google", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ("Google", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.216 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ("Bing", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    ("Apple", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"),
    ("Link checker", "W3C-checklink/5.0.0 libwww-perl/6.72"),
    ("Link checker", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"),
    ("Scripted client", "curl/8.5.0"),
    ("Scripted client", "python-requests/2.32.3"),
    ("Scripted client", "Wget/1.21.4"),
    ("Scripted client", "Go-http-client/1.1"),
    ("Scripted client", "python-httpx/0.28.1"),
    ("Scripted client", "Python/3.11 aiohttp/3.9.5"),
    ("Headless browser", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"),
    ("Crawler", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
    ("Crawler", "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"),
    ("Crawler", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"),
    ("Crawler", "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)"),
    ("Crawler", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"),
]  # fmt: skip

PEOPLE = [
    # Chrome on Windows, macOS and Android
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    # Safari on iPhone and iPad
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    # Firefox on Windows, Linux and Android
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    # Edge
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    # Samsung Internet
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    # A CUBOT phone is a phone, not a bot
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    # In-app browsers: X and Facebook on iOS, LinkedIn on Android (people tapping a link)
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Twitter for iPhone/10.48",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.39.108;FBBV/621151340;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_GB;FBOP/80]",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 [LinkedInApp]/9.29.3434",
]  # fmt: skip


@pytest.mark.parametrize(("name", "agent"), BOTS)
def test_each_fetcher_is_named(name, agent):
    assert classify("GET", agent) == name


@pytest.mark.parametrize("agent", PEOPLE)
def test_browsers_are_people(agent):
    assert classify("GET", agent) is None


def test_every_rule_has_a_real_example():
    assert {rule.name for rule in BOT_RULES} == {name for name, _ in BOTS}
    assert all(rule.reason for rule in BOT_RULES)


@pytest.mark.parametrize("method", ["HEAD", "head"])
def test_head_is_never_a_click(method):
    assert classify(method, PEOPLE[0]) == HEAD_REQUEST


@pytest.mark.parametrize("agent", [None, "", "   "])
def test_no_user_agent_is_a_bot(agent):
    assert classify("GET", agent) == NO_USER_AGENT
