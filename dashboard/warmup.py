"""Optional server warm-up: ``panel serve launch.py --setup dashboard/warmup.py``.

Run once by ``panel serve`` before it accepts connections: sets torch's threads, loads the
Panel/HoloViews extensions and starts loading the demo decoder (and its most-activating
windows) in a worker thread, so the first visitor finds it ready.
"""
from dashboard.app import configure_process
from dashboard.decoder import demo_provider

configure_process()
demo_provider("deep4").start()
