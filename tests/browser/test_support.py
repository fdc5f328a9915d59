"""Support staff in Chromium: an agent finds an order by the buyer's email, refunds part
of it and asks for a large refund; a lead approves it; the dashboard shows the refunds."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from orders import staff_groups
from orders.models import ApprovalStatus, Order, RefundApproval, RefundStatus
from tests.factories import UserFactory
from tests.sandbox import paid_through_sandbox

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox_channel")]
# The order page's Refund button (its text is upper-cased by the admin's style).
REFUND_LINK = ".object-tools a[href$='/refund/']"


def wait_for(browser, condition, seconds=15):
    return WebDriverWait(browser, seconds, poll_frequency=0.2).until(condition)


def staff(username, group):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def admin_log_in(browser, user):
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get(browser.url("/admin/login/?next=/admin/"))
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait_for(browser, EC.presence_of_element_located((By.ID, "user-tools")))


def refund(browser, amount, reason):
    browser.find_element(By.CSS_SELECTOR, REFUND_LINK).click()
    field = wait_for(browser, EC.presence_of_element_located((By.NAME, "amount")))
    field.clear()
    field.send_keys(amount)
    browser.find_element(By.NAME, "reason").send_keys(reason)
    browser.find_element(By.CSS_SELECTOR, "input[value=Continue]").click()
    browser.shot(f"refund-{amount}-confirm")
    browser.find_element(By.CSS_SELECTOR, "input[value='Yes, refund']").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".messagelist")))


def test_an_agent_refunds_part_a_lead_approves_a_large_refund_and_the_dashboard_shows_it(
    browser, settings
):
    settings.REFUND_APPROVAL_THRESHOLDS = {"cny": 10000}  # CN¥100.00 per order
    buyer = UserFactory(username="wang", email="wang.fang@example.com")
    order = paid_through_sandbox(user_bid=str(buyer.pk), price="299.00")
    paid_through_sandbox(user_bid="someone-else", price="49.00")
    agent = staff("agent", staff_groups.SUPPORT)
    lead = staff("lead", staff_groups.SUPPORT_LEAD)

    # The agent meets the support section first, and finds the order by the email.
    admin_log_in(browser, agent)
    sections = browser.find_elements(By.CSS_SELECTOR, "#content-main .module caption")
    assert sections[0].get_attribute("textContent").strip() == "Support"
    browser.shot("admin-index", keep="admin-index")
    browser.find_element(By.ID, "support-order").find_element(By.TAG_NAME, "a").click()
    search = wait_for(browser, EC.presence_of_element_located((By.ID, "searchbar")))
    search.send_keys("wang.fang@example.com\n")
    # The search's own page, not the unfiltered list still showing while it loads.
    wait_for(browser, EC.url_contains("q=wang.fang"))
    rows = wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"))
    assert len(rows) == 1 and order.order_bid in rows[0].text
    browser.shot("found-by-email")
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, REFUND_LINK)))

    # A part of it, under the threshold: refunded at once.
    refund(browser, "50.00", "Chapter 3 was missing")
    assert order.refunds.get().status == RefundStatus.SUCCEEDED
    page = browser.find_element(By.ID, "content-main").text
    assert "CN¥50.00" in page and "Chapter 3 was missing" in page
    # A large one: it waits for a lead.
    refund(browser, "150.00", "Course cancelled")
    approval = RefundApproval.objects.get()
    assert approval.status == ApprovalStatus.AWAITING and order.refunds.count() == 1
    page = browser.find_element(By.ID, "content-main").text
    assert "CN¥150.00: Course cancelled" in page  # awaiting approval, on the order's page
    # The order's history, as the agent sees it.
    history = browser.find_element(By.ID, "events-group").text
    assert "refund" in history and "paid" in history
    browser.shot("order-history", keep="admin-order")

    # The lead approves it from the approvals list.
    admin_log_in(browser, lead)
    browser.get(browser.url("/admin/orders/refundapproval/?status__exact=awaiting"))
    browser.find_element(By.CSS_SELECTOR, "#result_list input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("approve_selected")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    # What would be refunded, before anything is sent.
    table = wait_for(browser, EC.presence_of_element_located((By.ID, "approvals-to-decide")))
    assert "CN¥150.00" in table.text and "Course cancelled" in table.text
    browser.shot("approve-confirm")
    assert approval.__class__.objects.get().status == ApprovalStatus.AWAITING
    browser.find_element(By.CSS_SELECTOR, "input[value='Yes, approve and refund']").click()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success")))
    browser.shot("approved")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == lead
    order.refresh_from_db()
    assert order.refunded_price == Decimal("200.00")
    assert Order.objects.count() == 2

    # The dashboard counts both refunds today, beside what was paid.
    browser.get(browser.url("/admin/orders/order/dashboard/?days=7"))
    totals = wait_for(browser, EC.presence_of_element_located((By.ID, "dashboard-totals")))
    assert "CN¥348.00" in totals.text  # paid: 299.00 + 49.00
    assert "CN¥200.00" in totals.text  # refunded
    assert "CN¥148.00" in totals.text  # net
    wait_for(browser, lambda b: b.execute_script("return !!window.Chart"))
    browser.shot("dashboard", keep="dashboard")
