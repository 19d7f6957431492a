#!/usr/bin/python3
"""Drives the web board of a running segx in Debian's headless Chromium (Selenium).

usage: board_browser.py bid --url http://127.0.0.1:PORT --token TOKEN --lot ID --provider NAME
                            --member ip:10.0.0.0/8 --price 123 --screenshot FILE
       board_browser.py block --url http://127.0.0.1:PORT --token TOKEN --block lease-N
                              --provider-token TOKEN --screenshot FILE --chart-screenshot FILE

bid: signs in with the token, finds the lot with its provider's reputation badge, places a
bid using the keyboard only (Tab to the field, type, Enter), and waits until the bid appears
in "My bids".

block: signs in as a recipient of the running block lease-N and finds its panel under
"Running blocks" (article.block[data-block="lease-N"]). Its chart (svg.chart) says what it
draws in data-points (the number of points), data-last-seq and data-last-delivered-bps (the
last point's sequence number and delivered_bps). Between two reads of the API's series
(GET /v1/blocks/lease-N/series), the chart's count must lie within the two counts and its
last point must be the API's point of that sequence, with the same delivered_bps; the
panel's 1 s rate (data-bps-1s) is the chart's last point and its compliance summary
(p.compliance, data-owed, data-short, data-at-max) reads "…% compliant". Signed in as the provider, the board lists the block under "Active blocks of my
lots" with its chart. The keyboard opens the chart's table of the last seconds (details.table); the
panel is saved to --chart-screenshot. Then, once the block has ended, the lease's card under
"My leases" (article.lease[data-lease="N"]) must show the block's compliance summary with
the figures of GET /v1/blocks/lease-N and its chart from the series, beside the rating form
(form.rate-form); the rating is given with the keyboard and must then show "rated after …%
compliant delivery" when the API's rating carries delivery.compliant_ratio.

Exits 0 on success; prints what it saw and saves a screenshot either way.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def main():
    # Chromium's profile is a directory of its own, removed whatever happens.
    profile = tempfile.mkdtemp(prefix="segx-chromium-")
    try:
        return drive(profile)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def drive(profile):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="scenario", required=True)
    bid = sub.add_parser("bid")
    block = sub.add_parser("block")
    for q in (bid, block):
        q.add_argument("--url", required=True)
        q.add_argument("--token", required=True)
        q.add_argument("--screenshot", required=True)
    bid.add_argument("--lot", required=True)
    bid.add_argument("--provider", required=True)
    bid.add_argument("--member", required=True)
    bid.add_argument("--price", required=True)
    block.add_argument("--block", required=True)
    block.add_argument("--chart-screenshot", required=True)
    block.add_argument("--provider-token", required=True)
    a = p.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # A phone's width for the bid, a desktop's for the charts.
    size = "420,900" if a.scenario == "bid" else "1000,1000"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=" + size,
                 "--user-data-dir=" + profile):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    ok = False
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(a.url + "/ui/")
        # Sign in: the token field has focus on load; type and press Enter.
        token = wait.until(ec.visibility_of_element_located((By.ID, "token")))
        token.send_keys(a.token, Keys.ENTER)
        wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), "Signed in as"))
        ok = (bid_scenario if a.scenario == "bid" else block_scenario)(driver, wait, a)
        return 0 if ok else 1
    finally:
        try:
            driver.save_screenshot(a.screenshot)
        finally:
            driver.quit()
        print("screenshot:", a.screenshot, "ok" if ok else "FAILED")


def fail(text):
    print("board_browser: " + text, file=sys.stderr)
    return False


def bid_scenario(driver, wait, a):
    card = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, 'article.lot[data-lot="%s"]' % a.lot)))
    badge = card.find_element(By.CSS_SELECTOR, '[data-testid="reputation"]')
    text = card.text
    print("lot card:", text.replace("\n", " | "))
    if a.provider not in text or "positive" not in badge.text:
        return fail("the lot does not show its provider's reputation badge")

    # Keyboard only: focus the price field, type, Tab to members, type, Enter submits.
    price = card.find_element(By.NAME, "price")
    driver.execute_script("arguments[0].focus()", price)
    active = driver.switch_to.active_element
    active.send_keys(a.price)
    active.send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys(a.member, Keys.ENTER)

    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "accepted"))
    print("status:", driver.find_element(By.ID, "status").text)
    row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#my-bids tbody tr[data-bid]")))
    print("my bids:", row.text)
    if a.price not in row.text or a.lot not in row.text or "pending" not in row.text:
        return fail("the bid is not in My bids")
    return True



def api_get(a, path):
    req = urllib.request.Request(a.url + path, headers={"Authorization": "Bearer " + a.token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def chart_state(chart):
    """What the chart says it draws: (count, last seq, last delivered_bps)."""
    n = int(chart.get_attribute("data-points") or 0)
    seq = chart.get_attribute("data-last-seq")
    bps = chart.get_attribute("data-last-delivered-bps")
    return n, (int(seq) if seq else None), (float(bps) if bps else None)


def same_rate(x, y):
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def compliance_matches(p, c):
    """The summary element p.compliance against the API's compliance object."""
    got = (int(p.get_attribute("data-owed")), int(p.get_attribute("data-short")),
           int(p.get_attribute("data-at-max")))
    want = (c["owed_seconds"], c["shortfall_seconds"], c["at_max_seconds"])
    expected_text = "%d s owed, %d s short, %d s at max" % want
    return got == want and "% compliant" in p.text and expected_text in p.text


def switch_user(driver, wait, token):
    """Signs out (the button) and in again with another token."""
    driver.find_element(By.ID, "signout").click()
    field = wait.until(ec.visibility_of_element_located((By.ID, "token")))
    field.send_keys(token, Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "whoami"), "Signed in as"))
    print("now", driver.find_element(By.ID, "whoami").text)
    return True


def block_scenario(driver, wait, a):
    series = "/v1/blocks/%s/series" % a.block
    panel = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, 'article.block[data-block="%s"]' % a.block)))
    chart = panel.find_element(By.CSS_SELECTOR, "svg.chart")
    WebDriverWait(driver, 60).until(lambda d: chart_state(chart)[0] >= 3)

    # The chart follows the stream: between two reads of the API it must hold as many points
    # as the API had at one moment between them, and its last point must be the API's. A
    # chart one second behind (a point in flight) is read again, a stuck one never matches.
    matched = None
    for attempt in range(40):
        before = api_get(a, series)
        n, seq, bps = chart_state(chart)
        after = api_get(a, series)
        by_seq = {q["seq"]: q for q in after["points"]}
        print("attempt %d: api %d..%d points, chart %d (last seq %s, %s bit/s)"
              % (attempt, len(before["points"]), len(after["points"]), n, seq, bps))
        if (len(before["points"]) <= n <= len(after["points"]) and seq in by_seq
                and same_rate(by_seq[seq]["delivered_bps"], bps)
                and seq == after["first"] + n - 1):
            matched = (n, seq, bps)
            break
        time.sleep(0.3)
    if not matched:
        return fail("the chart of %s never matched the API's series" % a.block)
    print("chart matches the API: %d points, last seq %d at %s bit/s" % matched)
    if not after["points"] or int(chart.get_attribute("data-red-points")) != sum(
            1 for q in after["points"] if q["seq"] <= matched[1] and q["bytes"]["red"] > 0):
        return fail("the chart's red drops are not the API's seconds with red bytes")
    label = chart.get_attribute("aria-label")
    print("chart label:", label)
    if "Delivered rate" not in label or "promised" not in label:
        return fail("the chart has no text alternative")
    # The 1 s figure is the chart's last point (read in one go: one redraw sets both).
    last, now1 = driver.execute_script(
        "const p = arguments[0]; return [p.querySelector('svg.chart').dataset.lastDeliveredBps,"
        " p.querySelector('[data-bps-1s]').getAttribute('data-bps-1s')];", panel)
    if abs(float(last) - float(now1)) > 1e-6 * max(1.0, float(last)):
        return fail("the panel's 1 s rate %s is not the chart's last point %s" % (now1, last))
    summary = panel.find_element(By.CSS_SELECTOR, "p.compliance").text
    now = panel.find_element(By.CSS_SELECTOR, "p.rate-now").text
    print("panel:", now, "|", summary)
    if "% compliant" not in summary or "(1 s)" not in now or "(10 s)" not in now:
        return fail("the panel does not show the current rate and compliance")

    # The provider's view lists the same block among the active blocks of its lots.
    if not switch_user(driver, wait, a.provider_token):
        return False
    wait.until(ec.text_to_be_present_in_element((By.ID, "blocks-title"), "Active blocks of my lots"))
    theirs = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, 'article.block[data-block="%s"] svg.chart' % a.block)))
    WebDriverWait(driver, 30).until(lambda d: chart_state(theirs)[0] >= 1)
    print("provider's view: chart of %s with %d points" % (a.block, chart_state(theirs)[0]))
    if not switch_user(driver, wait, a.token):
        return False
    panel = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, 'article.block[data-block="%s"]' % a.block)))
    chart = panel.find_element(By.CSS_SELECTOR, "svg.chart")
    WebDriverWait(driver, 30).until(lambda d: chart_state(chart)[0] >= 1)

    # Keyboard: Tab from the chart's panel reaches the table's summary; Enter opens it.
    toggle = panel.find_element(By.CSS_SELECTOR, "details.table summary")
    driver.execute_script("arguments[0].focus()", panel)
    for _ in range(10):
        if driver.switch_to.active_element == toggle:
            break
        driver.switch_to.active_element.send_keys(Keys.TAB)
    if driver.switch_to.active_element != toggle:
        return fail("Tab does not reach the chart's table")
    toggle.send_keys(Keys.ENTER)
    rows = panel.find_elements(By.CSS_SELECTOR, "details.table tbody tr")
    if not rows or not rows[0].is_displayed():
        return fail("Enter does not open the chart's table")
    toggle.send_keys(Keys.ENTER)  # closed again: the screenshot shows the chart
    # A few more seconds make a better picture; the test does not depend on them.
    try:
        WebDriverWait(driver, 20).until(lambda d: chart_state(chart)[0] >= 15)
    except TimeoutException:
        pass
    driver.execute_script("document.activeElement.blur(); arguments[0].scrollIntoView()", panel)
    panel.screenshot(a.chart_screenshot)
    print("chart screenshot:", a.chart_screenshot)

    # After the block: the lease's card shows the evidence beside the rating form.
    lease = a.block.split("-", 1)[1]
    card_css = 'article.lease[data-lease="%s"]' % lease
    form = WebDriverWait(driver, 180).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, card_css + " form.rate-form")))
    card = driver.find_element(By.CSS_SELECTOR, card_css)
    block = api_get(a, "/v1/blocks/" + a.block)
    p = card.find_element(By.CSS_SELECTOR, ".evidence p.compliance")
    print("lease card compliance:", p.text, "| API:", json.dumps(block["compliance"]))
    if not compliance_matches(p, block["compliance"]) or block["compliance"]["seconds"] < 3:
        return fail("the lease's card does not show the block's compliance summary")
    if block["live"] is not None:
        ended = api_get(a, series)
        n, seq, bps = chart_state(card.find_element(By.CSS_SELECTOR, ".evidence svg.chart"))
        print("lease card chart: %d points (API %d)" % (n, len(ended["points"])))
        if n != len(ended["points"]) or (n and not same_rate(ended["points"][-1]["delivered_bps"], bps)):
            return fail("the lease's chart is not the block's series")
    # The evidence and the form are side by side on a desktop's width.
    ev = card.find_element(By.CSS_SELECTOR, ".evidence")
    if not (form.location["x"] > ev.location["x"] + ev.size["width"] / 2):
        return fail("the rating form is not beside the evidence")
    driver.execute_script("arguments[0].scrollIntoView()", card)

    # Rate with the keyboard: focus "Yes", Space checks it, Tab to the score, Enter submits.
    yes = form.find_element(By.CSS_SELECTOR, 'input[value="yes"]')
    driver.execute_script("arguments[0].focus()", yes)
    driver.switch_to.active_element.send_keys(Keys.SPACE)
    driver.switch_to.active_element.send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys("5")
    driver.switch_to.active_element.send_keys(Keys.TAB, "kept its promise", Keys.TAB, Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Rated"))
    rated = api_get(a, "/v1/leases/" + lease + "/ratings")["ratings"]
    print("ratings:", json.dumps(rated))
    if len(rated) != 1 or not rated[0]["positive"] or rated[0]["comment"] != "kept its promise":
        return fail("the rating typed on the board is not in the API")
    item = wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, card_css + ' li.rating[data-rating="%s"]' % rated[0]["id"])))
    print("rating on the board:", item.text)
    delivery = rated[0].get("delivery")
    if delivery and delivery.get("compliant_ratio") is not None:
        if "compliant delivery" not in item.text:
            return fail("the rating does not say how compliant the delivery was")
    return True

if __name__ == "__main__":
    sys.exit(main())
