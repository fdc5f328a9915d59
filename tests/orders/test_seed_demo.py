import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.management.commands.seed_demo import DEMO_PRODUCTS
from orders.models import Product


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_a_working_login(tmp_path, capsys, client):
    password_file = tmp_path / "admin-password"
    call_command("seed_demo", admin_password_file=str(password_file))
    first = capsys.readouterr().out
    call_command("seed_demo", admin_password_file=str(password_file))
    second = capsys.readouterr().out

    assert first == second
    password = password_file.read_text().strip()
    assert repr(password) in first
    assert Product.objects.count() == len(DEMO_PRODUCTS)
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert client.login(username="admin", password=password)
    assert client.get("/admin/").status_code == 200
