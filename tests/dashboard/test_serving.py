"""Serving: which tracebacks in the browser tests' server log are the app's (conftest.py), and who may ask for a page."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("dashboard_conftest", Path(__file__).with_name("conftest.py"))
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)

BOKEH_CLOSE = """2026-11-28 05:01:02,003 ERROR tornado.application: Uncaught exception GET /launch/ws?view=overview
Traceback (most recent call last):
  File "/x/site-packages/tornado/websocket.py", line 605, in on_connection_close
    self.on_close()
  File "/x/site-packages/bokeh/server/views/ws.py", line 310, in on_close
    self.connection.session.notify_connection_lost()
  File "/x/site-packages/bokeh/server/connection.py", line 65, in session
    assert self._session is not None
AssertionError
2026-11-28 05:01:03,000 INFO next line
"""

APP_ERROR = """2026-11-28 05:01:04,000 ERROR dashboard.state: callback of job open failed
Traceback (most recent call last):
  File "/work/main/dashboard/session_train.py", line 90, in done
    self.set_decoder(dec)
RuntimeError: boom
"""


def test_a_tab_closed_before_bokeh_made_its_session_is_not_the_apps_traceback():
    assert _conftest.app_tracebacks(BOKEH_CLOSE) == []
    found = _conftest.app_tracebacks(BOKEH_CLOSE + APP_ERROR)
    assert len(found) == 1 and "RuntimeError: boom" in found[0] and "callback of job open failed" in found[0]
    # the same assertion raised through the app's own code is the app's
    assert len(_conftest.app_tracebacks(BOKEH_CLOSE.replace("bokeh/server/views/ws.py", "dashboard/app.py"))) == 1


def test_pages_asked_for_from_another_machine_are_refused_unless_allowed():
    """The server serves the machine it runs on unless told otherwise: ``panel serve launch.py``
    without --address listened on every interface, and the page opened from the LAN."""
    import types

    from dashboard.app import remote_refusal

    def asked_from(ip):
        return types.SimpleNamespace(remote_ip=ip)

    for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.1.1"):
        assert remote_refusal(asked_from(ip), env={}) == "", ip
    said = remote_refusal(asked_from("192.168.1.5"), env={})
    assert said.startswith("This UnitScope server serves the machine it runs on only") and "192.168.1.5" in said
    assert "UNITSCOPE_ALLOW_REMOTE=1" in said and remote_refusal(asked_from("fe80::1%eth0"), env={})
    assert remote_refusal(asked_from("192.168.1.5"), env={"UNITSCOPE_ALLOW_REMOTE": "1"}) == ""
    assert remote_refusal(None, env={}) == ""  # (no request: a test or a notebook)
