"""UnitScope app: ``panel serve launch.py --show`` (add ``--num-threads 2`` so long work never blocks other tabs)."""
from dashboard.app import build_app

build_app().servable(title="UnitScope")
