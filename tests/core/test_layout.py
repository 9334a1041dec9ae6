"""Channel-map layouts: sphere fit and projection against analytic points and MNE's topomap."""
import numpy as np
import pytest
import xarray as xr

from core.layout import azimuthal_projection, channel_layout, fit_sphere, head_outline, spread_colocated


def _signals(pos=None, names=None, **coords):
    n = len(pos) if pos is not None else len(names)
    names = names or [f"C{i}" for i in range(n)]
    c = {"channel": names, "time": np.arange(4) / 100.0, **coords}
    if pos is not None:
        pos = np.asarray(pos, float)
        c.update(x=("channel", pos[:, 0]), y=("channel", pos[:, 1]), z=("channel", pos[:, 2]))
    return xr.DataArray(np.zeros((n, 4), np.float32), dims=("channel", "time"), coords=c)


def _cap(centre, radius, polar_deg, azim_deg):
    th, ph = np.deg2rad(polar_deg), np.deg2rad(azim_deg)
    return np.asarray(centre) + radius * np.c_[np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)]


def test_points_on_a_sphere_project_to_their_polar_angle():
    """An off-centre sphere is recovered; distance from the map's centre = polar angle / 90 deg."""
    rng = np.random.default_rng(0)
    polar, azim = rng.uniform(0, 120, 40), rng.uniform(-180, 180, 40)
    centre, radius = np.array([0.004, -0.015, 0.03]), 0.09
    pos = _cap(centre, radius, polar, azim)
    c, r = fit_sphere(pos)
    np.testing.assert_allclose(c, centre, atol=1e-9)
    assert r == pytest.approx(radius, abs=1e-9)
    xy = azimuthal_projection(pos, c, r)
    np.testing.assert_allclose(np.hypot(*xy.T), polar / 90.0, atol=1e-9)
    np.testing.assert_allclose(np.degrees(np.arctan2(xy[:, 1], xy[:, 0])), azim, atol=1e-6)


def test_eeg_montage_matches_mnes_topomap_projection_and_separates_lower_channels():
    """The standard 64-channel 10-10 cap: as MNE's topomap places it (given the same sphere);
    T9 and T10 no longer sit on T7 and T8 as in a top view."""
    import mne

    from core.io import standard_positions
    from mne.channels.layout import _find_topomap_coords  # private, but the reference

    names = ["Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T9", "T7", "C3", "Cz", "C4", "T8", "T10",
             "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2", "Iz", "FC5", "FC1", "FC2", "FC6", "CP5", "CP6"]
    pos = standard_positions(names, ["eeg"] * len(names))
    lay = channel_layout(_signals(pos, names))
    assert lay["kind"] == "head" and lay["placed"].all()
    xy = np.c_[lay["x"], lay["y"]]
    c, r = fit_sphere(pos)
    assert 0.07 < r < 0.12  # a head
    info = mne.create_info(names, 100.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage(ch_pos=dict(zip(names, pos)), coord_frame="head"))
    expected = (_find_topomap_coords(info, picks=list(range(len(names))), sphere=np.r_[c, r]) - c[:2]) / r
    np.testing.assert_allclose(xy, expected, atol=1e-9)
    at = dict(zip(names, xy))
    assert at["Fpz"][1] > at["Cz"][1] > at["Oz"][1] and at["T7"][0] < at["Cz"][0] < at["T8"][0]
    assert np.hypot(*at["Cz"]) < 0.15 and 0.85 < np.hypot(*at["T7"]) < 1.15  # vertex centre, equator circle
    top = pos[:, :2]
    assert np.linalg.norm(top[names.index("T9")] - top[names.index("T7")]) < 0.003  # a top view overlaps them
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.5 * np.median(d.min(axis=1))  # no two channels on top of each other


def test_meg_triplets_are_set_side_by_side():
    """102 places on a helmet, a magnetometer and two gradiometers at each: 306 distinct dots,
    each triplet together and apart from its neighbours."""
    rng = np.random.default_rng(1)
    places = _cap([0.0, 0.0, 0.04], 0.12, rng.uniform(0, 100, 102), rng.uniform(-180, 180, 102))
    pos = np.repeat(places, 3, axis=0)
    lay = channel_layout(_signals(pos, ch_type=("channel", ["mag", "grad", "grad"] * 102)))
    assert lay["kind"] == "head"
    xy = np.c_[lay["x"], lay["y"]]
    trip = xy.reshape(102, 3, 2)
    within = np.linalg.norm(trip[:, 1:] - trip[:, :1], axis=-1)
    assert (within > 0).all()
    centres = trip.mean(axis=1)
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert np.median(within.max(axis=1)) < np.median(d.min(axis=1))  # a triplet stays in its own place
    np.testing.assert_allclose(trip[:, 1, :], centres, atol=1e-12)  # the middle one at the place itself
    assert len(np.unique(xy.round(9), axis=0)) == 306


def test_other_layouts_grid_top_view_unplaced_and_reading_order():
    grid = _signals(names=["a", "b", "c"], row=("channel", [0, 0, 1]), col=("channel", [0, 1, 0]))
    lay = channel_layout(grid)
    assert lay["kind"] == "grid" and list(lay["y"]) == [0, 0, -1]
    # three sensors (the shared MEG file's case): too few for a sphere, seen from above
    few = channel_layout(_signals([[-0.1, 0.05, -0.06], [0.1, -0.04, -0.03], [-0.09, -0.03, 0.04]]))
    assert few["kind"] == "montage" and few["x"][0] == pytest.approx(-0.1)
    # an EOG channel at MNE's all-zero loc and one without position: a row below the head
    names = ["Fp1", "Fz", "F3", "C3", "Cz", "C4", "P3", "Pz", "O1", "O2"]
    from core.io import standard_positions

    pos = np.vstack([standard_positions(names, ["eeg"] * 10), [[0, 0, 0], [np.nan] * 3]])
    lay = channel_layout(_signals(pos, names + ["EOG", "ECG"]))
    assert lay["kind"] == "head" and list(lay["placed"]) == [True] * 10 + [False, False]
    assert (lay["y"][10:] < lay["y"][:10].min()).all() and lay["x"][10] != lay["x"][11]
    none = channel_layout(_signals(names=[f"E{i}" for i in range(5)]))
    assert none["kind"] == "index" and len(set(zip(none["x"], none["y"]))) == 5


def test_spread_leaves_distinct_places_alone_and_outline_is_a_unit_circle():
    pos = np.array([[0.0, 0, 0.1], [0.05, 0, 0.09]])
    xy = np.array([[0.0, 0.0], [0.5, 0.0]])
    np.testing.assert_array_equal(spread_colocated(xy, pos), xy)
    circle = head_outline()
    np.testing.assert_allclose(np.hypot(circle["xs"][0], circle["ys"][0]), 1.0)
    assert max(circle["ys"][1]) > 1.0  # the nose points up (+y, the front)
