"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium): every page loads without a console error under its Content-Security-Policy, the
chart holds exactly the points the rollup holds, the range and the app filter change them,
and the markup planted in the data never runs. Screenshots of each page are written to
$TEST_ARTIFACTS_DIR/dashboard (default: pytest's temporary directory)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drain.store.migrate import migrate
from testkit.browser import (
    chromium,
    console_errors,
    find_chromium,
    serve_in_thread,
    wait_for_charts,
)
from testkit.pg import create_database, drop_database
from tests.support.dashboard import (
    NOW,
    XSS_CATEGORY,
    XSS_NAME,
    XSS_TAG,
    Seeded,
    dashboard_app,
    seed,
)

HOUR = timedelta(hours=1)

if find_chromium() is None:
    if os.environ.get("CI"):
        pytest.fail("chromium and chromium-driver must be installed in CI (.ci/run)")
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

PAGES = [
    ("overview", "/?range=24h", ["chart-events"]),
    ("rollups", "/rollups", []),
    ("payment_history", "/rollups/payment_history?range=24h", ["chart-rollup"]),
    ("tags", "/tags?range=24h", []),
    ("quarantine", "/quarantine?range=24h", []),
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("TEST_ARTIFACTS_DIR")
    folder = Path(base) / "dashboard" if base else tmp_path_factory.mktemp("dashboard")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
async def seeded(pg_admin_url: str) -> AsyncIterator[tuple[str, Seeded]]:
    """One migrated, seeded database for the module's tests (they only read it)."""
    name, url = await create_database(pg_admin_url)
    try:
        await migrate(url)
        yield url, await seed(url)
    finally:
        await drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def site(seeded: tuple[str, Seeded]) -> Iterator[str]:
    """The seeded database's dashboard, served on 127.0.0.1 from a thread."""
    with serve_in_thread(dashboard_app(seeded[0])) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def plotted(driver: Any, chart_id: str) -> set[tuple[int, str, float]]:
    """The points uPlot holds for a chart: (x, series label, y) for each non-null y."""
    data = driver.execute_script(
        "var c = window.drainCharts[arguments[0]];"
        "return {data: c.plot.data, labels: c.plot.series.map(function (s) { return s.label; })};",
        chart_id,
    )
    xs, *columns = data["data"]
    labels = data["labels"][1:]
    return {
        (int(x), label, float(y))
        for label, column in zip(labels, columns, strict=True)
        for x, y in zip(xs, column, strict=True)
        if y is not None
    }


def x_scale(driver: Any, chart_id: str) -> tuple[float, float]:
    """The x scale uPlot drew a chart with: (min, max), seconds since the epoch."""
    found = driver.execute_script(
        "var s = window.drainCharts[arguments[0]].plot.scales.x; return [s.min, s.max];",
        chart_id,
    )
    return float(found[0]), float(found[1])


def expected_points(seeded: Seeded, app: str | None, hours: int) -> set[tuple[int, str, float]]:
    """The revenue the seed wrote per (bucket, category) over the last ``hours``, labelled as
    the chart labels its series (with the app when every app is shown)."""
    return {
        (int(bucket.timestamp()), category if app else f"{key_app} / {category}", revenue)
        for (key_app, bucket, category), revenue in seeded.revenue.items()
        if (app is None or key_app == app) and NOW - hours * HOUR <= bucket < NOW
    }


def test_every_page_loads_without_a_console_error(site: str, browser: Any, artifacts: Path) -> None:
    for name, path, charts in PAGES:
        browser.get(site + path)
        states = wait_for_charts(browser)
        assert {c: states.get(c) for c in charts} == dict.fromkeys(charts, "ready"), name
        errors = console_errors(browser)
        assert errors == [], (name, errors)
        assert browser.execute_script("return window.__xss === undefined"), name
        browser.save_screenshot(str(artifacts / f"{name}.png"))
        assert (artifacts / f"{name}.png").stat().st_size > 10_000


def test_the_chart_holds_exactly_the_rollups_points_and_follows_the_filters(
    site: str, browser: Any, seeded: tuple[str, Seeded]
) -> None:
    browser.get(site + "/rollups/payment_history?range=24h&app=shop")
    assert wait_for_charts(browser) == {"chart-rollup": "ready"}
    shop_day = plotted(browser, "chart-rollup")
    browser.get(site + "/rollups/payment_history?range=7d")
    wait_for_charts(browser)
    every_app = plotted(browser, "chart-rollup")
    browser.get(site + "/rollups/payment_history?range=1h&app=api")
    wait_for_charts(browser)
    api_hour = plotted(browser, "chart-rollup")
    assert console_errors(browser) == []
    assert shop_day == expected_points(seeded[1], "shop", 24)
    assert every_app == expected_points(seeded[1], None, 24 * 7)
    assert api_hour == expected_points(seeded[1], "api", 1)
    assert len(every_app) > len(shop_day) > len(api_hour) == 1


def test_a_single_bucket_is_drawn_on_the_pages_range_not_years_around_it(
    site: str, browser: Any
) -> None:
    browser.get(site + "/rollups/payment_history?range=1h&app=api")
    assert wait_for_charts(browser) == {"chart-rollup": "ready"}
    assert len(plotted(browser, "chart-rollup")) == 1
    assert x_scale(browser, "chart-rollup") == ((NOW - HOUR).timestamp(), NOW.timestamp())
    # the Overview's events chart, on a custom range of two minutes with events in one
    start = NOW - timedelta(minutes=2)
    browser.get(
        site + f"/?range=custom&from={start:%Y-%m-%dT%H:%M:%SZ}&to={NOW:%Y-%m-%dT%H:%M:%SZ}"
    )
    assert wait_for_charts(browser) == {"chart-events": "ready"}
    assert {x for x, _, _ in plotted(browser, "chart-events")} == {
        int((NOW - timedelta(minutes=1)).timestamp())
    }
    assert x_scale(browser, "chart-events") == (start.timestamp(), NOW.timestamp())
    assert console_errors(browser) == []


def test_the_range_picker_and_app_filter_drive_the_page(site: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(site + "/rollups/payment_history?range=24h")
    wait_for_charts(browser)
    before = len(plotted(browser, "chart-rollup"))
    app = browser.find_element(By.NAME, "app")
    app.clear()
    app.send_keys("api")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for_charts(browser)
    assert "app=api" in browser.current_url
    after_app = plotted(browser, "chart-rollup")
    assert {label for _, label, _ in after_app} == {"categoryA"}
    assert len(after_app) < before
    Select(browser.find_element(By.ID, "range")).select_by_value("1h")  # submits on change
    wait_for_charts(browser)
    assert "range=1h" in browser.current_url and "app=api" in browser.current_url
    assert len(plotted(browser, "chart-rollup")) == 1
    assert console_errors(browser) == []


def test_markup_in_the_data_never_runs(site: str, browser: Any) -> None:
    for path in (
        "/rollups/payment_history?range=24h&app=shop",
        "/tags?range=24h",
        "/quarantine?range=24h",
        "/?range=24h",
    ):
        browser.get(site + path)
        wait_for_charts(browser)
        assert browser.execute_script("return window.__xss === undefined"), path
        assert (
            browser.execute_script(
                "return document.querySelectorAll('img, svg:not(.u-over)').length"
            )
            == 0
        ), path
        assert console_errors(browser) == [], path
    browser.get(site + "/quarantine?range=24h")
    text = browser.execute_script("return document.body.innerText")
    assert "</pre><script>window.__xss=5</script>" in text  # shown as text, escaped
    assert XSS_NAME in text and XSS_TAG in text
    browser.get(site + "/rollups/payment_history?range=24h&app=shop")
    wait_for_charts(browser)
    legend = browser.execute_script(
        "return Array.from(document.querySelectorAll('.u-legend .u-label'))"
        ".map(function (e) { return e.textContent; })"
    )
    assert XSS_CATEGORY in legend  # the series is named by the text, drawn as text
