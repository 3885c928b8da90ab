"""The dashboard's alert settings page in a real headless Chromium against the real stack: an
admin adds a channel, a route, an escalation, quiet hours, a cap and a contact, saves, and
the API holds exactly that (the secret sealed, never shown back); a wrong value is named on
the page and nothing is saved; the page speaks zh-CN; a stalled deal's history page shows
who acted. Screenshots: artifacts/screenshots/alert-settings-{en,zh-CN}.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from services.alerter.links import LinkSigner
from services.alerter.secrets import Sealer, link_key
from tests.builders import stall_a_deal_now
from tests.conftest import Stack, wait_until
from tests.integration.test_alert_settings import routing_in_redis, settings_of
from tests.integration.test_dashboard import browser, shot  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
SECRET = "wecom-robot-secret-for-the-page-test"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811 - a browser fixture's page
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page threw: {errors}"


def field(page: Page, path: str, value: str | None = None) -> Any:
    chosen = "" if value is None else f'[value="{value}"]'
    return page.locator(f'[data-path="{path}"]{chosen}')


def open_settings(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.url}/dashboard/settings.html#key={stack.admin_key}")
    expect(page.get_by_test_id("routing")).to_be_visible(timeout=30_000)


def test_an_admin_edits_routing_on_the_settings_page(stack: Stack, page: Page) -> None:
    open_settings(page, stack)
    page.get_by_test_id("add-channels").click()
    field(page, "channels.0.id").fill("sales-wecom")
    field(page, "channels.0.kind").select_option("wecom")
    field(page, "channels.0.target").fill(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc")
    field(page, "channels.0.secret").fill(SECRET)
    field(page, "channels.0.language").select_option("zh-CN")
    page.get_by_test_id("add-routes").click()
    field(page, "routes.0.channel").select_option("sales-wecom")
    field(page, "routes.0.to", "manager").check()
    field(page, "routes.0.rules").fill("stalled_deal, churn_risk")
    page.get_by_test_id("add-escalations").click()
    field(page, "escalations.0.after_minutes").fill("30")
    field(page, "escalations.0.severity").fill("high")
    page.get_by_test_id("quiet-on").check()
    field(page, "quiet.start").fill("08:30")
    field(page, "quiet.working_days", "5").check()
    page.get_by_test_id("daily-cap").fill("4")
    page.get_by_test_id("add-contacts").click()
    field(page, "contacts.0.id").fill("M1")
    field(page, "contacts.0.name").fill("王经理")
    field(page, "contacts.0.language").select_option("zh-CN")
    field(page, "contacts.0.mobile").fill("13900000000")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("result")).to_have_text("Saved", timeout=15_000)

    with stack.client() as client:
        saved = client.get("/v1/alerts/routing").json()
    assert saved == {
        "channels": [{"id": "sales-wecom", "kind": "wecom", "secret": "set",
                      "target": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
                      "language": "zh-CN"}],
        "routes": [{"channel": "sales-wecom", "to": ["owner", "manager"],
                    "rules": ["stalled_deal", "churn_risk"], "severities": []}],
        "escalations": [{"after_minutes": 30, "rule": None, "severity": "high"}],
        "quiet": {"start": "08:30", "end": "18:00", "working_days": [0, 1, 2, 3, 4, 5],
                  "let_through": ["high"]},
        "daily_cap": 4, "key_customers_to_manager": True,
        "contacts": {"M1": {"id": "M1", "name": "王经理", "language": "zh-CN", "email": None,
                            "mobile": "13900000000"}}}
    stored = routing_in_redis(stack)
    assert stored is not None
    assert Sealer(settings_of(stack)).unseal(stored["channels"][0]["secret"]) == SECRET
    assert SECRET not in page.content()

    # Shown again from the API; a wrong value is named on the page and nothing is saved.
    page.reload()
    expect(field(page, "channels.0.id")).to_have_value("sales-wecom", timeout=30_000)
    assert field(page, "channels.0.secret").input_value() == ""  # never sent to the page
    field(page, "escalations.0.after_minutes").fill("0")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("result")).to_contain_text("escalations[0].after_minutes")
    expect(field(page, "escalations.0.after_minutes")).to_have_class("invalid")
    with stack.client() as client:
        assert client.get("/v1/alerts/routing").json() == saved
    field(page, "escalations.0.after_minutes").fill("30")
    shot(page, "alert-settings-en")

    page.get_by_test_id("lang-toggle").click()
    expect(page.locator("h2", has_text="通知渠道")).to_be_visible()
    expect(field(page, "channels.0.id")).to_have_value("sales-wecom")
    shot(page, "alert-settings-zh-CN")
    page.get_by_test_id("save").click()  # the secret, left empty, is kept
    expect(page.get_by_test_id("result")).to_have_text("已保存", timeout=15_000)
    stored = routing_in_redis(stack)
    assert stored is not None
    assert Sealer(settings_of(stack)).unseal(stored["channels"][0]["secret"]) == SECRET


def test_a_stalled_deals_history_page_shows_who_acted(stack: Stack, page: Page) -> None:
    with stack.client() as client:
        stall_a_deal_now(client, "D7")
        alert = wait_until(lambda: next((a for a in client.get("/v1/alerts").json()["alerts"]
                                         if a["subject"] == "D7"), None),
                           timeout=90, message="the stalled deal's alert")
    signer = LinkSigner(link_key(settings_of(stack)), stack.url, timedelta(hours=1))
    token = signer.token("default", alert["id"], "M1", "acknowledge", datetime.now(UTC))
    page.goto(f"{stack.url}/v1/alerts/act/{token}")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("Acknowledged. Thank you.")

    page.goto(f"{stack.url}/dashboard#key={stack.admin_key}")
    expect(page.locator("[data-testid=history-link]", has_text="D7")).to_have_count(
        1, timeout=60_000)
    page.locator("[data-testid=history-link]", has_text="D7").first.click()
    card = page.get_by_test_id("history-alert").first
    expect(card).to_have_attribute("data-state", "acknowledged", timeout=30_000)
    expect(card.get_by_test_id("actions")).to_contain_text("M1 acknowledged")
    expect(card.get_by_test_id("actions")).to_contain_text("by one-tap link")
    shot(page, "alert-history-en")
    page.get_by_test_id("lang-toggle").click()
    expect(card.get_by_test_id("actions")).to_contain_text("M1 已确认")
    expect(card.get_by_test_id("actions")).to_contain_text("通过一键链接")
    expect(card.locator("h2")).to_contain_text("阶段停滞")
    shot(page, "alert-history-zh-CN")
