"""Optional server warm-up: ``panel serve launch.py --num-threads 2 --setup dashboard/warmup.py``.

Run once by ``panel serve`` before it accepts connections: starts loading the demo decoder
(and its most-activating windows) in a worker thread, and meanwhile sets torch's threads
and loads the Panel/HoloViews extensions, so the first visitor's page builds without
waiting for imports and finds the decoder (nearly) ready.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project root

from dashboard.decoder import demo_provider  # noqa: E402

demo_provider("deep4").start()

from dashboard.app import configure_process  # noqa: E402

configure_process()
