"""Where each channel is drawn on a channel map: the demo's grid, a head seen from above, or
reading order.

A head montage (EEG or MEG positions in metres, from the file or the standard 10-05 montage)
is drawn as topographic maps are (MNE's ``plot_topomap``): an azimuthal equidistant
projection about the centre of a sphere fitted to the positions, the vertical (+z) axis of
the frame at the centre, the nose (+y) up, right (+x) to the right; a channel's distance
from the centre is its angle from the vertical in units of 90 degrees (times its distance
from the sphere's centre in sphere radii, as in MNE), so the head's equator lies on the
unit circle and channels below it (T9, Iz) lie outside it instead of on
top of the channels above them (T7, Oz), as they do in a plain top view. Sensors at one
place (an MEG triplet: a magnetometer and two planar gradiometers) are set side by side.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["channel_layout", "head_outline", "fit_sphere", "azimuthal_projection", "spread_colocated"]

MIN_HEAD_CHANNELS = 8  # [A] fewer positions than this: a plain top view (a sphere fit needs a cap)
_RADIUS_RANGE = (0.03, 0.5)  # m: a fitted "head" outside it is not one (top view instead)
COLOCATED_M = 0.002  # sensors closer than 2 mm are drawn side by side [A]


def fit_sphere(pos: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points: ``|p|^2 = 2 c.p + (r^2 - |c|^2)``, linear in c.

    Parameters
    ----------
    pos : ndarray, shape (n, 3)

    Returns
    -------
    centre : ndarray, shape (3,)
    radius : float (NaN when the points do not determine a sphere)
    """
    pos = np.asarray(pos, dtype=float)
    a = np.c_[2 * pos, np.ones(len(pos))]  # (n, 4)
    b = (pos**2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    r2 = sol[3] + centre @ centre
    return centre, float(np.sqrt(r2)) if r2 > 0 else float("nan")


def azimuthal_projection(pos: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Azimuthal equidistant projection about ``centre``, pole +z: (n, 3) -> (n, 2).

    As MNE's topomaps project (``mne.channels.layout._auto_topomap_coords``, relative to
    the sphere's centre and in units of its radius): the distance from the origin is the
    polar angle in units of 90 degrees times the point's distance from the centre over
    ``radius``; a point on the sphere's equator lies on the unit circle.
    """
    v = np.asarray(pos, dtype=float) - np.asarray(centre, dtype=float)
    norm = np.linalg.norm(v, axis=1)
    theta = np.arccos(np.clip(v[:, 2] / np.where(norm > 0, norm, 1.0), -1.0, 1.0))  # from the vertex
    phi = np.arctan2(v[:, 1], v[:, 0])
    rho = theta / (np.pi / 2) * norm / radius
    return np.c_[rho * np.cos(phi), rho * np.sin(phi)]


def spread_colocated(xy: np.ndarray, pos: np.ndarray, *, within: float = COLOCATED_M) -> np.ndarray:
    """Set sensors at one place (3-D distance below ``within``) side by side, in channel order.

    The members of a group are spaced along x, centred on their shared place, by a third of
    the median distance between neighbouring places, so that a group stays inside its own
    share of the map.
    """
    xy = np.array(xy, dtype=float)
    pos = np.asarray(pos, dtype=float)
    n = len(pos)
    group = -np.ones(n, dtype=int)
    for i in range(n):
        if group[i] < 0:
            near = np.flatnonzero((group < 0) & (np.linalg.norm(pos - pos[i], axis=1) < within))
            group[near] = i
    leaders = np.unique(group)
    if len(leaders) == n:
        return xy
    places = xy[leaders]
    if len(places) > 1:
        d = np.linalg.norm(places[:, None] - places[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        step = float(np.median(d.min(axis=1))) / 3
    else:
        step = 0.1
    for g in leaders:
        members = np.flatnonzero(group == g)
        if len(members) > 1:
            offsets = (np.arange(len(members)) - (len(members) - 1) / 2) * step
            xy[members, 0] = xy[g, 0] + offsets
            xy[members, 1] = xy[g, 1]
    return xy


def channel_layout(signals: xr.DataArray) -> dict:
    """Map positions of the channels of ``signals`` (dims ``channel``, ``time``).

    Returns
    -------
    layout : dict
        ``x``, ``y`` (ndarray, one per channel) and ``kind``: ``"grid"`` (the ``row`` / ``col``
        coordinates of an ECoG grid such as the demo's), ``"head"`` (``x``, ``y``, ``z``
        positions of at least 8 channels on a head-sized sphere: the azimuthal projection of
        the module docstring; the head's outline is the unit circle), ``"montage"`` (other
        positions: seen from above, x and y) or ``"index"`` (no positions: reading order).
        With ``"head"`` and ``"montage"``, ``placed`` (bool, one per channel) is False for
        channels without a position (NaN, or all zero as MNE stores an EOG channel's), drawn
        in a row below the map.
    """
    n = signals.sizes["channel"]
    if "row" in signals.coords and "col" in signals.coords:
        return {"x": signals["col"].values.astype(float), "y": -signals["row"].values.astype(float),
                "kind": "grid"}
    if "x" in signals.coords and "y" in signals.coords:
        pos = np.c_[signals["x"].values, signals["y"].values,
                    signals["z"].values if "z" in signals.coords else np.zeros(n)].astype(float)
        # a channel without a position (NaN, or MNE's all-zero loc of an EOG or ECG channel)
        placed = np.isfinite(pos).all(axis=1) & (np.abs(pos).sum(axis=1) > 0)
        xy, kind = None, "montage"
        if placed.sum() >= MIN_HEAD_CHANNELS and "z" in signals.coords:
            centre, radius = fit_sphere(pos[placed])
            if _RADIUS_RANGE[0] <= radius <= _RADIUS_RANGE[1]:
                xy, kind = azimuthal_projection(pos[placed], centre, radius), "head"
        if xy is None and placed.sum() >= 2 and np.ptp(pos[placed, 0]) + np.ptp(pos[placed, 1]) > 0:
            xy = pos[placed, :2]
        if xy is not None:
            xy = spread_colocated(xy, pos[placed])
            out = np.zeros((n, 2))
            out[placed] = xy
            if not placed.all():  # the unplaced ones in a row below the map
                lo, (x0, x1) = xy[:, 1].min(), (xy[:, 0].min(), xy[:, 0].max())
                k = int((~placed).sum())
                gap = (x1 - x0) / max(k - 1, 1) if k > 1 else 0.0
                out[~placed, 0] = x0 + gap * np.arange(k) if k > 1 else (x0 + x1) / 2
                out[~placed, 1] = lo - 0.25 * max(x1 - x0, 1e-9)
            return {"x": out[:, 0], "y": out[:, 1], "kind": kind, "placed": placed}
    cols = int(np.ceil(np.sqrt(n)))
    r, c = np.divmod(np.arange(n), cols)
    return {"x": c.astype(float), "y": -r.astype(float), "kind": "index"}


def head_outline() -> dict:
    """The head's outline for a ``"head"`` layout, as MNE draws it (unit circle, nose at +y,
    ears at +-x): ``xs``, ``ys``, one list of points per line."""
    t = np.linspace(0, 2 * np.pi, 121)
    ear_x = np.array([.497, .510, .518, .5299, .5419, .54, .547, .532, .510, .489]) * 2
    ear_y = np.array([.0555, .0775, .0783, .0746, .0555, -.0055, -.0932, -.1313, -.1384, -.1199]) * 2
    return {"xs": [np.cos(t), np.array([-0.1, 0.0, 0.1]), ear_x, -ear_x],
            "ys": [np.sin(t), np.array([0.995, 1.15, 0.995]), ear_y, ear_y]}
