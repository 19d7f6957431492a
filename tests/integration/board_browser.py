#!/usr/bin/python3
"""Drives the web board of a running segx in Debian's headless Chromium (Selenium).

usage: board_browser.py --url http://127.0.0.1:PORT --token TOKEN --lot ID --provider NAME
                        --member ip:10.0.0.0/8 --price 123 --screenshot FILE

Signs in with the token, finds the lot with its provider's reputation badge, places a bid
using the keyboard only (Tab to the field, type, Enter), and waits until the bid appears in
"My bids". Exits 0 on success; prints what it saw and saves a screenshot either way.
"""
import argparse
import shutil
import sys
import tempfile

from selenium import webdriver
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
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--lot", required=True)
    p.add_argument("--provider", required=True)
    p.add_argument("--member", required=True)
    p.add_argument("--price", required=True)
    p.add_argument("--screenshot", required=True)
    a = p.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=420,900",
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

        card = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, 'article.lot[data-lot="%s"]' % a.lot)))
        badge = card.find_element(By.CSS_SELECTOR, '[data-testid="reputation"]')
        text = card.text
        print("lot card:", text.replace("\n", " | "))
        if a.provider not in text or "positive" not in badge.text:
            print("board_browser: the lot does not show its provider's reputation badge",
                  file=sys.stderr)
            return 1

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
            print("board_browser: the bid is not in My bids", file=sys.stderr)
            return 1
        ok = True
        return 0
    finally:
        try:
            driver.save_screenshot(a.screenshot)
        finally:
            driver.quit()
        print("screenshot:", a.screenshot, "ok" if ok else "FAILED")


if __name__ == "__main__":
    sys.exit(main())
