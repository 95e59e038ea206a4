"""(Named to run last: Streamlit's in-process AppTest leaves threads behind, and process pools that
fork afterwards in the same pytest process lose workers — BrokenProcessPool in the synthetic-footage
and vision tests. A known issue to fix at its root: fork-safe pools or AppTest in a subprocess.)

Dashboard sign-in beyond loopback, run in-process with Streamlit's AppTest (no marts needed: the gate
comes before any data is read). The browser test over real HTTP is in test_serving_dashboard.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from watershop_dagster.config import init_workspace
from watershop_dagster.serving.commands import DASHBOARD_SCRIPT, dashboard
from watershop_dagster.serving.settings import API_KEY_ENV_VAR, is_loopback

KEY = "dash-key-5b1e"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    config = init_workspace(tmp_path, shop_id="north", timezone="UTC")
    monkeypatch.setenv("WATERSHOP_CONFIG", str(tmp_path / "watershop.yaml"))
    return config


@pytest.fixture
def bound_to():
    """Set the address Streamlit reports as bound (AppTest runs the script in this process)."""
    previous = st_config.get_option("server.address")
    yield lambda address: st_config.set_option("server.address", address)
    st_config.set_option("server.address", previous)


def run(app: AppTest | None = None) -> AppTest:
    app = app or AppTest.from_file(str(DASHBOARD_SCRIPT), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def signed_in(app: AppTest) -> bool:
    return any(box.label == "Shop" for box in app.selectbox)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("192.168.1.20", False), ("shop.example", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_on_loopback_no_sign_in_is_asked(workspace, bound_to, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV_VAR, KEY)
    bound_to("127.0.0.1")
    assert signed_in(run())


def test_beyond_loopback_a_session_must_sign_in_with_the_key(workspace, bound_to, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV_VAR, KEY)
    bound_to("0.0.0.0")
    app = run()
    assert not signed_in(app) and [t.label for t in app.text_input] == ["API key"]
    assert "north" not in str([m.value for m in app.markdown])

    app.text_input[0].input("wrong")
    app.button[0].click()
    run(app)
    assert not signed_in(app) and [e.value for e in app.error] == ["Wrong API key."]

    app.text_input[0].input(KEY)
    app.button[0].click()
    run(app)
    assert signed_in(app) and "API key" not in [t.label for t in app.text_input]

    other = run()  # another browser session starts signed out
    assert not signed_in(other)

    monkeypatch.setenv(API_KEY_ENV_VAR, "rotated")  # a new key signs the old session out
    run(app)
    assert not signed_in(app)


def test_beyond_loopback_without_a_key_nothing_is_shown(workspace, bound_to, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV_VAR, raising=False)
    bound_to(None)  # Streamlit's default: every interface
    app = run()
    assert not signed_in(app) and not app.text_input
    assert "no API key is configured" in app.error[0].value


def test_cli_refuses_to_listen_beyond_loopback_without_a_key(workspace, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV_VAR, raising=False)
    result = CliRunner().invoke(dashboard, ["--host", "0.0.0.0", "--config", str(workspace.workspace_dir /
                                                                                  "watershop.yaml")])
    assert result.exit_code != 0 and "refusing to serve the dashboard on 0.0.0.0" in result.output
