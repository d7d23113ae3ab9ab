"""The web page in a real browser: Debian's Chromium driven by Playwright, against main.py on a loopback port."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from sqlalchemy import create_engine, select

from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_log import recommendations, scores, sqlite_url
from tests.relay import Relay, relayed_url
from tests.servers import PASSWORD, running_main

CHROMIUM = "/usr/bin/chromium"
# No browser download is possible here, and the machine's network is closed: quiet flags for both.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
# Screenshots of each step, kept as test artefacts (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(synthetic_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of main.py serving the synthetic model."""
    database = sqlite_url(tmp_path / "ui.sqlite3")
    with running_main(synthetic_model_dir / MODEL_FILE_NAME, database, tmp_path / "server.log") as (url, _):
        yield url, database


@pytest.fixture
def page(browser: Browser, server: tuple[str, str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone's width
    page = context.new_page()
    page.goto(f"{server[0]}/ui/")
    yield page
    context.close()


def snapshot(page: Page, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{step}.png"), full_page=True)


def sign_in(page: Page, password: str = PASSWORD) -> None:
    page.fill("#password", password)
    page.click("#login")


def test_a_wrong_password_shows_an_error(page: Page) -> None:
    snapshot(page, "1-sign-in")
    sign_in(page, "not the password")
    expect(page.locator("#error")).to_contain_text("wrong password")
    expect(page.locator("#password")).to_be_visible()
    snapshot(page, "2-wrong-password")


def test_the_whole_flow_sign_in_ask_score_sign_out(page: Page, server: tuple[str, str]) -> None:
    url, database = server
    sign_in(page)
    expect(page.locator("#age")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    snapshot(page, "3-form")

    page.fill("#age", "0")
    page.click("#recommend")
    expect(page.locator("#error")).to_contain_text("age")
    snapshot(page, "4-invalid-age")

    page.fill("#age", "34")
    page.select_option("#gender", "F")
    page.select_option("#occupation", "writer")
    page.fill("#max-recs", "5")
    page.click("#recommend")
    items = page.locator("#recommendations li")
    expect(items).to_have_count(5)
    expect(page.locator("#error")).to_be_hidden()
    shown = [title.strip() for title in page.locator("#recommendations li .title").all_inner_texts()]
    token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
    asked = {"age": 34, "gender": "F", "occupation": "writer", "max_recs": 5, "explain": True}
    answer = requests.post(f"{url}/api/recommend", json=asked, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert shown == answer.json()["recommendations"]
    reasons = answer.json()["reasons"]
    assert page.locator("#recommendations li .reason").all_inner_texts() == [reason["text"] for reason in reasons]
    assert page.locator("#recommendations li .facts").all_inner_texts() == [
        f"{', '.join(reason['genres'])} · {reason['year']}" if reason["genres"] else str(reason["year"])
        for reason in reasons
    ]
    # Readable at a phone's width: nothing runs off the side.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snapshot(page, "5-recommendations")

    first = items.nth(0)
    first.locator('button[data-score="4"]').click()
    expect(first.locator(".saved")).to_have_text("Saved: 4/5")
    expect(first.locator('button[data-score="4"]')).to_have_attribute("aria-pressed", "true")
    snapshot(page, "6-scored")
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(select(scores.c.movie, scores.c.score)).all()
    engine.dispose()
    assert rows == [(shown[0], 4.0)]

    page.click("#logout")
    expect(page.locator("#password")).to_be_visible()
    expect(page.locator("#recommendations li")).to_have_count(0)
    assert page.evaluate("sessionStorage.length") == 0
    snapshot(page, "7-signed-out")


def test_a_score_answered_503_with_retry_after_is_sent_again_and_saved(page: Page, server: tuple[str, str]) -> None:
    """As a replica answers a score whose recommendation another replica is still copying in."""
    pending = {"answered": 0}

    def first_score_pending(route: Route) -> None:
        if pending["answered"] == 0:
            pending["answered"] += 1
            route.fulfill(status=503, headers={"Retry-After": "1"}, json={"message": "not recorded yet"})
        else:
            route.continue_()

    page.route("**/api/recommend/score", first_score_pending)
    sign_in(page)
    page.fill("#age", "34")
    page.click("#recommend")
    first = page.locator("#recommendations li").nth(0)
    first.locator('button[data-score="5"]').click()
    expect(first.locator(".saved")).to_have_text("Saved: 5/5")
    expect(page.locator("#error")).to_be_hidden()
    engine = create_engine(server[1])
    with engine.connect() as connection:
        stored = connection.execute(select(scores.c.score)).scalars().all()
    engine.dispose()
    assert (pending["answered"], stored) == (1, [5.0])


def test_the_page_sends_one_random_client_key_that_outlives_a_reload(page: Page, server: tuple[str, str]) -> None:
    sign_in(page)
    for _ in range(2):  # the second time after a reload, in the same tab (still signed in)
        page.fill("#age", "52")
        page.click("#recommend")
        expect(page.locator("#recommendations li")).to_have_count(10)
        page.reload()
    engine = create_engine(server[1])
    with engine.connect() as connection:
        keys = connection.execute(select(recommendations.c.client)).scalars().all()
    engine.dispose()
    assert len(keys) == 2 and keys[0] == keys[1]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", keys[0])
    assert page.evaluate("localStorage.getItem('recommender.client')") == keys[0]


def test_the_token_lives_in_session_storage_only(page: Page) -> None:
    sign_in(page)
    expect(page.locator("#age")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage)") == ["recommender.token"]
    assert page.context.cookies() == []
    assert "token" not in page.url


def test_the_flow_works_with_the_keyboard_alone(page: Page) -> None:
    page.focus("#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#age")).to_be_focused()
    page.keyboard.press("Enter")  # submits the form with its defaults
    expect(page.locator("#recommendations li")).to_have_count(10)
    expect(page.locator("#recommendations li .reason")).to_have_count(10)
    page.locator('#recommendations li button[data-score="5"]').first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#recommendations li .saved").first).to_have_text("Saved: 5/5")
    # A screen reader announces each title's reason with its score buttons.
    group = page.locator("#recommendations li .scores").first
    described_by = group.get_attribute("aria-describedby")
    assert (
        page.locator(f"#{described_by}").inner_text() == page.locator("#recommendations li .reason").first.inner_text()
    )


def test_every_control_has_a_label(page: Page) -> None:
    sign_in(page)
    expect(page.locator("#age")).to_be_visible()
    for control in ("#password", "#age", "#gender", "#occupation", "#max-recs"):
        control_id = control.removeprefix("#")
        assert page.locator(f'label[for="{control_id}"]').count() == 1, control


def test_an_expired_session_sends_back_to_sign_in_with_a_message(page: Page) -> None:
    sign_in(page)
    expect(page.locator("#age")).to_be_visible()
    page.evaluate("sessionStorage.setItem('recommender.token', 'expired.or.forged')")
    page.click("#recommend")
    expect(page.locator("#password")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("sign in again")


def test_the_page_loads_only_its_own_files(page: Page, server: tuple[str, str]) -> None:
    response = requests.get(f"{server[0]}/ui/", timeout=5)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "default-src 'none'" in policy
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.reload()
    expect(page.locator("#password")).to_be_visible()
    assert requested and all(address.startswith(server[0]) for address in requested)


@pytest.fixture
def relayed_server(synthetic_model_dir: Path, tmp_path: Path, empty_postgres: str, relay: Relay) -> Iterator[str]:
    """main.py on PostgreSQL through a relay (tests/relay.py) that the test cuts: a database outage."""
    database = relayed_url(empty_postgres, relay)
    with running_main(synthetic_model_dir / MODEL_FILE_NAME, database, tmp_path / "server.log") as (url, _):
        yield url


def stored_scores(database_url: str) -> dict[str, float]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(scores.c.movie, scores.c.score)).all()
    engine.dispose()
    return dict(rows)


OUTAGE_SECONDS = 30


@pytest.mark.service
def test_scores_given_through_a_database_outage_are_all_saved_once_it_is_back(
    browser: Browser, relayed_server: str, relay: Relay, empty_postgres: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{relayed_server}/ui/")
    sign_in(page)
    page.fill("#max-recs", "5")
    page.click("#recommend")
    items = page.locator("#recommendations li")
    expect(items).to_have_count(5)
    titles = [title.strip() for title in page.locator("#recommendations li .title").all_inner_texts()]

    relay.cut()
    cut_at = time.monotonic()
    for index in range(5):
        items.nth(index).locator(f'button[data-score="{index + 1}"]').click()
        expect(items.nth(index).locator(".saved")).to_have_text(f"Waiting to be saved: {index + 1}/5")
    expect(page.locator("#outbox")).to_have_text("5 scores waiting to be saved")
    snapshot(page, "8-scores-waiting")
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
    for index in range(5):  # still waiting, none dropped
        expect(items.nth(index).locator(".saved")).to_have_text(f"Waiting to be saved: {index + 1}/5")
    relay.open()

    for index in range(5):
        expect(items.nth(index).locator(".saved")).to_have_text(f"Saved: {index + 1}/5", timeout=30_000)
    expect(page.locator("#outbox")).to_be_hidden()
    snapshot(page, "9-scores-saved")
    assert stored_scores(empty_postgres) == {title: float(index + 1) for index, title in enumerate(titles)}
    assert page.evaluate("localStorage.getItem('recommender.outbox')") == "[]"
    context.close()


@pytest.mark.service
def test_a_score_waiting_to_be_saved_outlives_a_reload(
    browser: Browser, relayed_server: str, relay: Relay, empty_postgres: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{relayed_server}/ui/")
    sign_in(page)
    page.click("#recommend")
    first = page.locator("#recommendations li").nth(0)
    title = first.locator(".title").inner_text().strip()
    relay.cut()
    first.locator('button[data-score="3"]').click()
    expect(first.locator(".saved")).to_have_text("Waiting to be saved: 3/5")
    page.reload()
    expect(page.locator("#outbox")).to_have_text("1 score waiting to be saved")
    relay.open()
    expect(page.locator("#outbox")).to_be_hidden(timeout=20_000)
    assert stored_scores(empty_postgres) == {title: 3.0}
    context.close()


def test_a_score_the_service_refuses_leaves_the_outbox_and_says_why(page: Page) -> None:
    sign_in(page)
    page.click("#recommend")
    first = page.locator("#recommendations li").nth(0)
    page.route("**/api/recommend/score", lambda route: route.fulfill(status=400, json={"message": "movie: no"}))
    first.locator('button[data-score="2"]').click()
    expect(first.locator(".saved")).to_have_text("Not saved: movie: no")
    expect(page.locator("#outbox")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('recommender.outbox')") == "[]"


def test_more_like_these_learns_from_the_sessions_scores_and_never_shows_a_scored_title(
    page: Page, server: tuple[str, str]
) -> None:
    sign_in(page)
    expect(page.locator("#more")).to_be_hidden()
    page.fill("#age", "34")
    page.fill("#max-recs", "6")
    page.click("#recommend")
    items = page.locator("#recommendations li")
    expect(items).to_have_count(6)
    first = [title.strip() for title in page.locator("#recommendations li .title").all_inner_texts()]
    given = {first[0]: 5, first[1]: 1, first[3]: 4}
    for title, score in given.items():
        item = items.nth(first.index(title))
        item.locator(f'button[data-score="{score}"]').click()
        expect(item.locator(".saved")).to_have_text(f"Saved: {score}/5")
    expect(page.locator("#more")).to_be_visible()
    assert page.evaluate("JSON.parse(sessionStorage.getItem('recommender.rated'))") == [
        {"movie": title, "score": score} for title, score in given.items()
    ]
    page.click("#more")
    expect(page.locator("#recommendations li .title").first).not_to_have_text(first[0])
    expect(items).to_have_count(6)
    second = [title.strip() for title in page.locator("#recommendations li .title").all_inner_texts()]
    snapshot(page, "8-more-like-these")
    assert not set(second) & set(given)
    assert second != first
    engine = create_engine(server[1])
    with engine.connect() as connection:
        recorded = connection.execute(select(recommendations.c.rated).order_by(recommendations.c.created_at)).scalars()
        assert list(recorded) == [None, [{"movie": title, "score": score} for title, score in given.items()]]
    engine.dispose()
