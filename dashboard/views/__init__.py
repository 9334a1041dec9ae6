"""One ``pn.viewable.Viewer`` per view; each takes the shared :class:`~dashboard.state.Session`.

New views (e.g. Prune, Kernels) are added as one module here and one entry in
:data:`dashboard.app.VIEW_CLASSES`.
"""
from .data import DataView
from .encoding import EncodingView
from .export import ExportView
from .kernels import KernelsView
from .overview import OverviewView
from .prune import PruneView
from .units import UnitsView

__all__ = ["DataView", "OverviewView", "UnitsView", "PruneView", "KernelsView", "EncodingView", "ExportView"]
