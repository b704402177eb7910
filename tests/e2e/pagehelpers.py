"""Small Selenium helpers shared by the page tests."""

from __future__ import annotations


def wait(driver, condition, timeout=20, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message=f"timed out waiting for {what}")


def hits(driver) -> list[tuple[str, str]]:
    """(figure id, patent) of each card of the result grid, in order."""
    from selenium.webdriver.common.by import By

    return [(e.get_attribute("data-figure-id"), e.get_attribute("data-patent"))
            for e in driver.find_elements(By.CSS_SELECTOR, "#grid .hit")]


def results_meta(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "results-meta").text
