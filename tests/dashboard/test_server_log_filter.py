"""The browser tests' server-log check: which tracebacks are the app's (tests/dashboard/conftest.py)."""
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
