"""A buyer in Chromium: the shop, the sandbox's page, and the order page that turns
paid by itself."""

from decimal import Decimal

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from orders.models import Order, OrderStatus
from tests.browser.conftest import PHONE
from tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox_channel")]


def log_in(browser, user, next_path="/"):
    browser.get(browser.url(f"/accounts/login/?next={next_path}"))
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait_for(browser, EC.presence_of_element_located((By.ID, "my-orders-link")))


def wait_for(browser, condition, seconds=15):
    return WebDriverWait(browser, seconds, poll_frequency=0.2).until(condition)


def test_a_buyer_pays_with_the_sandbox_and_sees_it_paid_without_clicking(browser):
    course = ProductFactory(name="Django in Production", price=Decimal("299.00"))
    ProductFactory(name="Git basics", price=Decimal("0.00"))
    ProductFactory(name="Stripe for SaaS", price=Decimal("6.99"), currency="usd")
    buyer = UserFactory(username="mei")
    log_in(browser, buyer)
    card = wait_for(
        browser, EC.presence_of_element_located((By.ID, f"product-{course.product_bid}"))
    )
    assert "CN¥299.00" in card.text and "$6.99" in browser.page_source
    assert "Get it free" in browser.page_source
    browser.shot("shop", keep="shop")

    card.find_element(By.CSS_SELECTOR, "button[value='sandbox:confirm_page']").click()
    wait_for(browser, EC.url_contains("/sandbox/pay/"))
    assert "CN¥299.00" in browser.find_element(By.CLASS_NAME, "amount").text
    browser.shot("sandbox-page")
    sandbox_tab = browser.current_window_handle
    order = Order.objects.get()

    # The order page, open in a second tab, waits for the payment.
    browser.switch_to.new_window("tab")
    browser.get(browser.url(f"/orders/{order.order_bid}/"))
    state = browser.find_element(By.ID, "order-state")
    assert state.get_attribute("data-state") == "waiting"
    browser.shot("order-waiting")

    # Paid on the sandbox's page: that tab lands back on the order's page, paid.
    browser.switch_to.window(sandbox_tab)
    browser.find_element(By.CSS_SELECTOR, "button[value=pay]").click()
    wait_for(browser, EC.url_contains(f"/orders/{order.order_bid}/"))
    assert browser.find_element(By.ID, "order-status").text == "paid"
    browser.close()

    # The other tab turned paid by itself: nobody clicked there.
    browser.switch_to.window(browser.window_handles[0])
    wait_for(
        browser,
        lambda b: b.find_element(By.ID, "order-state").get_attribute("data-state") == "paid",
    )
    receipt = browser.find_element(By.ID, "receipt")
    assert "CN¥299.00" in receipt.text and "Django in Production" in receipt.text
    browser.shot("order-paid", keep="order")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_price == Decimal("299.00")


def test_a_phone_sized_shop_offers_no_qr_code_and_gets_a_free_course(browser):
    ProductFactory(name="Git basics", price=Decimal("0.00"))
    browser.set_window_size(*PHONE)
    log_in(browser, UserFactory(username="lin"))
    button = wait_for(browser, EC.element_to_be_clickable((By.XPATH, "//button[.='Get it free']")))
    # The page fits the phone: nothing wider than the screen.
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth")
    browser.shot("phone-shop")
    button.click()
    wait_for(browser, EC.url_contains("/orders/"))
    assert browser.find_element(By.ID, "order-state").get_attribute("data-state") == "paid"
    assert Order.objects.get().payment_channel == "free"
    browser.shot("phone-free-order")
