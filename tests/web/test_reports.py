import re


def _compare(client, auth, names, views, clicks, action="compare"):
    token = auth.csrf("/reports/calculator")
    return client.post(
        "/reports/calculator",
        data={
            "csrf_token": token,
            "name": names,
            "impressions": views,
            "clicks": clicks,
            "action": action,
        },
    ).get_data(as_text=True)


def test_calculator_shows_rates_ranges_and_a_verdict(client, auth, world):
    auth.login(world.home.staff.email)
    page = _compare(client, auth, ["bare link", "context"], ["3,000", "3100"], ["30", "52"])
    assert "Not enough evidence yet" in page
    assert "10.0" in page  # bare link: 30 clicks in 3,000 views is 10 per 1,000
    assert "more impressions per arm would be needed" in page


def test_calculator_calls_a_clear_winner(client, auth, world):
    auth.login(world.home.staff.email)
    page = _compare(client, auth, ["bare link", "context"], ["40000", "40000"], ["1200", "1800"])
    assert "A framing did better" in page


def test_calculator_names_the_bad_row_in_plain_words(client, auth, world):
    auth.login(world.home.staff.email)
    page = _compare(client, auth, ["bare link", "context"], ["3000", "31"], ["30", "52"])
    error = re.search(r'id="calc-error">(.*?)<', page).group(1)
    assert error == "Clicks for “context”: clicks (52) exceed impressions (31)"


def test_calculator_refuses_text_for_a_count(client, auth, world):
    auth.login(world.home.staff.email)
    page = _compare(client, auth, ["a", "b"], ["lots", "100"], ["1", "2"])
    assert "Views for “a”" in page


def test_add_a_framing_keeps_what_was_typed_up_to_eight(client, auth, world):
    auth.login(world.home.staff.email)
    page = _compare(
        client, auth, ["bare link", "context"], ["3000", "3100"], ["30", "52"], action="add"
    )
    assert page.count('name="name"') == 3
    assert 'value="context"' in page
    eight = _compare(
        client, auth, [f"f{i}" for i in range(8)], ["100"] * 8, ["1"] * 8, action="add"
    )
    assert eight.count('name="name"') == 8
    assert "Add a framing" not in eight
