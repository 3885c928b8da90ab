"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the real
stack: it shows the API's numbers, its filters live in the URL and change the numbers, it
speaks zh-CN, and an alert fired by a posted event reaches the feed without a reload.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.builders import stall_a_deal_now
from tests.conftest import LoadedStack, Stack, wait_until

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out of this closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("no chromium: `make deps` installs Debian's (Playwright's download fails)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page threw: {errors}"


def open_dashboard(page: Page, stack: Stack, query: str = "", key: str | None = None) -> None:
    """The page as `salespulse up` links it: the credential in the fragment."""
    page.goto(f"{stack.url}/dashboard{query}#key={key or stack.admin_key}")
    loaded(page)


def loaded(page: Page, times: int = 1) -> None:
    """Until the page has fetched and drawn everything `times` times."""
    page.wait_for_function(f"Number(document.body?.dataset.loaded || 0) >= {times}",
                           timeout=30_000)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def funnel_on_page(page: Page) -> dict[str, str]:
    """Every funnel cell's raw value as the page holds it, by its test id."""
    cells: dict[str, str] = page.eval_on_selector_all(
        "[data-testid^='funnel-'][data-value]",
        "cells => Object.fromEntries(cells.map(c => [c.dataset.testid, c.dataset.value]))")
    return cells


def funnel_of_api(answer: dict[str, Any]) -> dict[str, str]:
    """The same cells from the API's answer, in the page's raw form (JSON numbers as
    JavaScript prints them, amounts as the API's decimal strings, null as empty)."""
    def raw(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # JavaScript prints 1.0 as "1"
        return str(value)

    cells = {}
    for row in answer["stages"]:
        for field, key in (("entered", "entered"), ("advanced", "advanced"),
                           ("conversion", "conversion"), ("open_deals", "open_deals"),
                           ("open_amount", "open_amount"), ("dwell_median", "dwell_days_median"),
                           ("dwell_p90", "dwell_days_p90")):
            cells[f"funnel-{row['stage']}-{field}"] = raw(row[key])
    for field in ("won", "lost", "win_rate", "won_value"):
        cells[f"funnel-won-{field}"] = raw(answer[field])
    return cells


def test_the_dashboard_shows_the_apis_funnel(year_stack: LoadedStack, page: Page) -> None:
    open_dashboard(page, year_stack.stack)
    expected = funnel_of_api(year_stack.get("/v1/funnel"))
    assert funnel_on_page(page) == expected
    assert page.get_by_test_id("kpi-won_value").get_attribute("data-value") == \
        year_stack.get("/v1/funnel")["won_value"]
    # Every panel the API serves is drawn, none is marked unavailable.
    assert page.locator(".unavailable[data-testid^='unavailable-']").count() == 0
    assert page.locator("#funnel-chart canvas").count() == 1
    assert page.get_by_test_id("leaderboard-table").locator("tr[data-rep]").count() > 0
    # The simulated year is long over: no target is under way, so the panel asks again for
    # those over and shows the latest twelve.
    assert not year_stack.get("/v1/targets", standing="under_way")["targets"]
    over = year_stack.get("/v1/targets", standing="over")["targets"]
    assert page.get_by_test_id("targets-table").locator("tbody tr").count() == min(12, len(over))
    shot(page, "dashboard-en")


def test_a_filter_changes_the_numbers_and_the_url_keeps_it(year_stack: LoadedStack,
                                                           page: Page) -> None:
    everyone = funnel_of_api(year_stack.get("/v1/funnel"))
    team = year_stack.get("/v1/dimensions")["team"][-1]
    teams = funnel_of_api(year_stack.get("/v1/funnel", team=team))
    assert teams != everyone  # else the test could not tell the filter from no filter
    open_dashboard(page, year_stack.stack)

    page.locator("#filters [name=team]").select_option(team)
    expect(page).to_have_url(re.compile(rf"[?&]team={team}(&|$)"))
    wait_until(lambda: funnel_on_page(page) == teams, timeout=30,
               message="the team's funnel on the page")

    page.locator("#filters [name=from]").fill("2017-07-01")
    page.locator("#filters [name=from]").dispatch_event("change")
    expect(page).to_have_url(re.compile(r"[?&]from=2017-07-01(&|$)"))
    since_july = funnel_of_api(year_stack.get("/v1/funnel", team=team, **{"from": "2017-07-01"}))
    wait_until(lambda: funnel_on_page(page) == since_july, timeout=30,
               message="the team's funnel since July on the page")

    page.reload()  # the URL alone restores the view
    loaded(page)
    assert page.locator("#filters [name=team]").input_value() == team
    assert page.locator("#filters [name=from]").input_value() == "2017-07-01"
    assert funnel_on_page(page) == since_july
    shot(page, "dashboard-filtered")


def test_a_refresh_overtaken_by_a_filter_is_cancelled_and_never_drawn(
        year_stack: LoadedStack, page: Page) -> None:
    team = year_stack.get("/v1/dimensions")["team"][-1]
    teams = funnel_of_api(year_stack.get("/v1/funnel", team=team))
    assert teams != funnel_of_api(year_stack.get("/v1/funnel"))
    held: list[Route] = []  # the first refresh's funnel, answered only when let go
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.route(re.compile(r"/v1/funnel(\?(?!.*team=).*)?$"), lambda route: held.append(route))
    page.goto(f"{year_stack.stack.url}/dashboard?refresh=0#key={year_stack.stack.admin_key}")
    wait_until(lambda: page.wait_for_timeout(50) or held, timeout=30,
               message="the first refresh asking for the funnel")

    page.locator("#filters [name=team]").select_option(team)
    loaded(page)
    assert funnel_on_page(page) == teams
    wait_until(lambda: page.wait_for_timeout(50) or any("/v1/funnel" in url for url in failed),
               timeout=10, message="the overtaken funnel request cancelled")
    for route in held:  # too late: whatever it answers is not drawn
        with contextlib.suppress(PlaywrightError):
            route.continue_()
    page.wait_for_timeout(500)
    assert funnel_on_page(page) == teams
    assert page.evaluate("document.body.dataset.loaded") == "1"


def test_a_reps_credential_shows_their_own_dashboard_with_the_scope_locked(
        year_stack: LoadedStack, page: Page) -> None:
    rep = year_stack.get("/v1/dimensions")["reps"][0]
    mine = funnel_of_api(year_stack.get("/v1/funnel", rep=rep["id"]))
    assert mine != funnel_of_api(year_stack.get("/v1/funnel"))
    open_dashboard(page, year_stack.stack, key=year_stack.stack.key("rep", rep_id=rep["id"]))

    assert "#key=" not in page.url  # the key left the address bar for the tab's storage
    assert page.get_by_test_id("who").inner_text().endswith(f"rep {rep['id']}")
    assert page.locator("#filters [name=rep]").is_disabled()
    assert page.locator("#filters [name=team]").is_disabled()
    assert funnel_on_page(page) == mine
    rows = page.get_by_test_id("leaderboard-table").locator("tr[data-rep]")
    assert [rows.nth(i).get_attribute("data-rep") for i in range(rows.count())] == [rep["id"]]
    page.locator("#reset").click()  # cannot widen the view: the scope comes back
    loaded(page, 2)
    assert funnel_on_page(page) == mine
    shot(page, "dashboard-rep")


def test_without_a_credential_the_page_asks_for_one(year_stack: LoadedStack,
                                                     page: Page) -> None:
    page.goto(f"{year_stack.stack.url}/dashboard")
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    page.locator("#sign-in-form [name=key]").fill(year_stack.stack.admin_key)
    with page.expect_navigation():  # the page reloads signed in
        page.locator("#sign-in-form button[type=submit]").click()
    loaded(page)
    assert funnel_on_page(page) == funnel_of_api(year_stack.get("/v1/funnel"))


def test_switching_to_chinese_changes_labels_and_number_format(year_stack: LoadedStack,
                                                              page: Page) -> None:
    open_dashboard(page, year_stack.stack)
    assert page.locator("h1").inner_text() == "SalesPulse · Sales dashboard"
    english = page.get_by_test_id("funnel-table").locator("th").first.inner_text()

    page.get_by_test_id("lang-toggle").click()
    loaded(page, 2)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert page.locator("h1").inner_text() == "SalesPulse · 销售看板"
    assert page.get_by_test_id("funnel-table").locator("th").first.inner_text() == "阶段" != \
        english
    expect(page).to_have_url(re.compile(r"[?&]lang=zh-CN(&|$)"))
    # zh-CN currency formatting (CNY by default) uses ¥, en-US writes CN¥.
    won = page.get_by_test_id("kpi-won_value").locator(".note").inner_text()
    assert won.startswith("¥"), won
    shot(page, "dashboard-zh-CN")


def test_an_alert_posted_through_the_api_appears_in_the_feed_without_reload(
        stack: Stack, page: Page) -> None:
    open_dashboard(page, stack, "?refresh=0")  # no timer: only the stream can update it
    expect(page.get_by_test_id("live-status")).to_have_class(re.compile(r"\bon\b"),
                                                             timeout=30_000)
    assert page.locator("[data-testid=alert]").count() == 0
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
    with stack.client() as client:
        stall_a_deal_now(client, "D1")

    alert = page.locator("[data-testid=alert][data-subject=D1]")
    expect(alert).to_have_count(1, timeout=60_000)
    assert "Stalled in stage" in alert.inner_text()
    # The alert also redrew the figures: the new deal is in the funnel, without a reload.
    expect(page.get_by_test_id("funnel-negotiation-open_deals")).to_have_attribute(
        "data-value", "1", timeout=30_000)
    assert page.evaluate("window.sameDocument") is True
    shot(page, "dashboard-live-alert")
