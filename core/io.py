"""Loading recordings: any format ``mne.io.read_raw`` reads, BIDS folders (mne-bids), BCI2000.

MNE drops BCI2000 state vectors (eye gaze, stimulus codes) and does not apply the channel
gains, so ``.dat`` files go through :func:`read_bci2000`, a small numpy reader that returns
microvolts and every state.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from ._validation import UnitScopeError
from .recording import Events, Recording

__all__ = ["read_recording", "read_bci2000", "edf_cut_short", "vmrk_past_end", "recording_from_raw", "missing_companions", "bids_recordings",
           "parse_bids", "bids_label", "is_bids_root", "source_label", "channel_key", "match_channels", "BIDS_ENTITIES", "FOLDER_FORMATS", "DATA_CH_TYPES"]

logger = logging.getLogger(__name__)
DATA_CH_TYPES = ("eeg", "ecog", "seeg", "dbs", "mag", "grad", "meg")
# BIDS entities that choose a recording in a BIDS folder, and their short forms in file names
BIDS_ENTITIES = {"subject": "sub", "session": "ses", "task": "task", "acquisition": "acq", "run": "run",
                 "processing": "proc", "recording": "rec", "datatype": None}
_BIDS_EXTENSIONS = [".edf", ".bdf", ".vhdr", ".set", ".fif", ".con", ".sqd", ".ds"]
FOLDER_FORMATS = (".ds", ".mff")  # recordings kept as a folder: CTF MEG, EGI (MNE reads them by the folder)


def read_bci2000(path: str | Path) -> tuple[np.ndarray, dict, float, list[str]]:
    """Read a BCI2000 ``.dat`` file (:func:`_read_bci2000` without its note).

    Returns
    -------
    eeg_uv : ndarray, shape (n_samples, n_chans)
        Signals in microvolts (``SourceChOffset`` and ``SourceChGain`` applied).
    states : dict of str to ndarray, shape (n_samples,)
        Every state of the state vector (e.g. ``StimulusCode``, eye-tracker gaze).
    sfreq : float
    ch_names : list of str
    """
    return _read_bci2000(path)[:4]


def _read_bci2000(path: str | Path) -> tuple[np.ndarray, dict, float, list[str], str]:
    """:func:`read_bci2000`, and a note ("" or what a cut-short file lost)."""
    raw = Path(path).read_bytes()

    def field(pattern: str, text: str, what: str) -> str:
        m = re.search(pattern, text)
        if m is None:
            raise UnitScopeError(f"{str(path)!r} is not a readable BCI2000 .dat file: its header has no {what}.")
        return m.group(1)

    try:
        head = raw[: raw.index(b"\n")].decode("latin1")
    except ValueError as exc:
        raise UnitScopeError(f"{str(path)!r} is not a readable BCI2000 .dat file: no header line "
                             f"({len(raw)} bytes).") from exc
    hlen, nch, svl = (int(field(k + r"=\s*(\d+)", head, k)) for k in ("HeaderLen", "SourceCh", "StatevectorLen"))
    if len(raw) < hlen:
        raise UnitScopeError(f"Cannot read {str(path)!r}: its header is cut short: HeaderLen says {hlen} bytes, the "
                             f"file holds {len(raw)} (an unfinished copy or upload?).")
    hdr = raw[:hlen].decode("latin1").replace("\r", "")
    sfreq = float(field(r"SamplingRate=\s*([\d.]+)", hdr, "SamplingRate"))
    gain = np.array(field(r"SourceChGain=\s*\d+((?:\s+[-\d.eE]+){%d})" % nch, hdr,
                          f"SourceChGain of {nch} channels").split(), float)
    offs = np.array(field(r"SourceChOffset=\s*\d+((?:\s+[-\d.eE]+){%d})" % nch, hdr,
                          f"SourceChOffset of {nch} channels").split(), float)
    if "[ State Vector Definition ]" not in hdr:
        raise UnitScopeError(f"{str(path)!r} is not a readable BCI2000 .dat file: its header has no "
                             "[ State Vector Definition ] section.")
    block = hdr.split("[ State Vector Definition ]")[1].split("[")[0]
    states = {ln.split()[0]: tuple(map(int, ln.split()[1:5])) for ln in block.strip().split("\n") if ln.strip()}
    named = re.search(r"ChannelNames=\s*(\d+)", hdr)
    if named and int(named.group(1)) != nch:  # (read as 9 channels Ch1..Ch9 of garbage before)
        raise UnitScopeError(f"{str(path)!r} is not a readable BCI2000 .dat file: its header says SourceCh={nch} "
                             f"but names {named.group(1)} channels (ChannelNames); the samples cannot be laid out.")
    m = re.search(r"ChannelNames=\s*(\d+)((?:\s+\S+){%d})" % nch, hdr)
    ch_names = m.group(2).split() if m and int(m.group(1)) == nch else [f"Ch{i + 1}" for i in range(nch)]
    rec = nch * 2 + svl
    body = np.frombuffer(raw[hlen:], np.uint8)
    if len(body) % rec:  # the format has no sample count: a partial last sample is all that shows a cut
        logger.warning("%s: %d bytes after the last whole sample (of %d bytes) left out: the file was cut short "
                       "(an unfinished copy or upload?), or its header does not fit its samples",
                       Path(path).name, len(body) % rec, rec)
        states_note = (f"the file ends {len(body) % rec} bytes into a sample of {rec} bytes: it was cut short (an "
                       "unfinished copy or upload?) or its header does not fit its samples; the whole samples are read")
    else:
        states_note = ""
    body = body[: len(body) // rec * rec].reshape(-1, rec)  # (samples, bytes per sample)
    eeg_uv = (body[:, : nch * 2].copy().view("<i2").astype(float) - offs) * gain  # (samples, chans)
    sv = body[:, nch * 2:].astype(np.uint64)
    out = {}
    for name, (length, _, byte, bit) in states.items():
        word = np.zeros(len(sv), np.uint64)
        for i in range(min((bit + length + 7) // 8, svl - byte)):
            word |= sv[:, byte + i] << np.uint64(8 * i)
        out[name] = ((word >> np.uint64(bit)) & np.uint64((1 << length) - 1)).astype(np.int64)
    return eeg_uv, out, sfreq, ch_names, states_note


def _bci2000_recording(path: Path) -> Recording:
    eeg_uv, states, sfreq, ch_names, note = _read_bci2000(path)
    n = eeg_uv.shape[0]
    t = np.arange(n) / sfreq
    data = [eeg_uv.T * 1e-6]
    names, types = list(ch_names), ["eeg"] * len(ch_names)
    # continuous states (eye gaze, pupil size, ...) become misc channels usable as targets;
    # samples the tracker marks invalid are interpolated from valid neighbours
    for name, values in states.items():
        if not name.startswith("Eyetracker") or "Validity" in name:
            continue
        v = values.astype(float)
        side = "Left" if "Left" in name else "Right"
        valid_key = f"Eyetracker{side}EyeValidity"
        if valid_key in states:
            ok = states[valid_key] == 0
            if ok.sum() >= 2 and not ok.all():
                v = np.interp(t, t[ok], v[ok])
        data.append(v[None])
        names.append(name)
        types.append("misc")
    coords = {"channel": names, "time": t, "ch_type": ("channel", types)}
    pos = standard_positions(names, types)  # BCI2000 files carry names only (e.g. Fz, Cz, PO7)
    if pos is not None:
        coords.update(x=("channel", pos[:, 0]), y=("channel", pos[:, 1]), z=("channel", pos[:, 2]))
    signals = xr.DataArray(np.concatenate(data).astype(np.float32), dims=("channel", "time"), coords=coords,
                           attrs={"sfreq": sfreq, "units": "V", "source": str(path),
                                  "positions": "standard 10-05 montage, by channel name" if pos is not None else "none",
                                  **({"read_note": note} if note else {})})
    code = states.get("StimulusCode", np.zeros(n, int))
    # a stimulus starts where the code changes to a nonzero value: from 0, or straight from
    # another code (a rise only missed a code that followed a higher one without a 0 between)
    on = np.flatnonzero((np.diff(code, prepend=0) != 0) & (code > 0))
    events = Events(on / sfreq, code[on].astype(str), np.full(len(on), np.nan))
    return Recording(signals, None, events)


def channel_key(name) -> str:
    """A channel name as matched to a standard position or to a name the user typed: case,
    outer spaces and the trailing dots of EDF names (``C3..``, ``Fc5.``) ignored."""
    return str(name).strip().rstrip(".").lower()


def match_channels(requested, ch_names) -> list[str]:
    """The channel names of ``ch_names`` that the names in ``requested`` (as a user typed them)
    stand for, matched by :func:`channel_key` (case and the trailing dots of EDF names ignored):
    ``C3`` is EEGMMIDB's ``C3..``. An exact name wins; a loose one that matches several channels
    is a UnitScopeError; a name that matches none is returned as given, for the caller's own
    message."""
    names = [str(n) for n in ch_names]
    out = []
    for name in requested:
        if name in names:
            out.append(name)
            continue
        hits = [n for n in names if channel_key(n) == channel_key(name)]
        if len(hits) > 1:
            raise UnitScopeError(f"Channel {name!r} matches {hits} (case and trailing dots ignored); "
                                 "give the exact name.")
        out.append(hits[0] if hits else name)
    return out


def standard_positions(names, types) -> np.ndarray | None:
    """Positions (n, 3; metres, head frame) of the standard 10-05 montage for a recording whose
    EEG channels carry none, when every EEG channel is named by it (case, and the trailing dots
    of EDF names such as ``Fc5.``, ignored); NaN for the other channels. None when any EEG
    channel's name is not a 10-05 position, or there is no EEG channel.

    [A] A file without positions but with 10-05 names is drawn on the standard head rather
    than in reading order; the signals' ``attrs["positions"]`` says so.
    """
    eeg = [i for i, t in enumerate(types) if t == "eeg"]
    if not eeg:
        return None
    import mne

    builtin = mne.channels.get_builtin_montages()  # MNE 1.13 renamed standard_1005 to colin27_1005
    name = "colin27_1005" if "colin27_1005" in builtin else "standard_1005"
    ch_pos = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    by_name = {k.lower(): v for k, v in ch_pos.items()}
    keys = [channel_key(names[i]) for i in eeg]
    if not all(k in by_name for k in keys):
        return None
    pos = np.full((len(names), 3), np.nan)
    for i, k in zip(eeg, keys):
        pos[i] = by_name[k]
    return pos


_READ_CHUNK_BYTES = 64 * 2 ** 20  # float64 samples read from a file at a time


def recording_from_raw(raw) -> Recording:
    """Convert an MNE ``Raw`` (preloaded or not) into a :class:`Recording` (all channels kept).

    The samples are read a stretch at a time into one float32 array: a recording not preloaded
    is never held in float64 as a whole (see :func:`core.preprocessing.rowwise`)."""
    import mne

    sfreq = float(raw.info["sfreq"])
    data = np.empty((len(raw.ch_names), raw.n_times), dtype=np.float32)
    step = max(1, _READ_CHUNK_BYTES // (8 * max(len(raw.ch_names), 1)))
    for start in range(0, raw.n_times, step):
        data[:, start:start + step] = raw.get_data(start=start, stop=min(start + step, raw.n_times))
    ch_types = raw.get_channel_types()
    pos = np.array([ch["loc"][:3] for ch in raw.info["chs"]])
    coords = {"channel": list(raw.ch_names), "time": raw.times, "ch_type": ("channel", ch_types)}
    positions = ""
    if np.isfinite(pos).all() and np.abs(pos).sum() > 0:
        positions = "from the file"
    else:
        pos = standard_positions(raw.ch_names, ch_types)
        positions = "standard 10-05 montage, by channel name" if pos is not None else ""
    if positions:
        coords.update(x=("channel", pos[:, 0]), y=("channel", pos[:, 1]), z=("channel", pos[:, 2]))
    signals = xr.DataArray(data, dims=("channel", "time"), coords=coords,
                           attrs={"sfreq": sfreq, "units": "SI (V or T)", "positions": positions or "none",
                                  "bads": json.dumps([str(c) for c in raw.info["bads"]]),
                                  "source": str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else ""})
    events = None
    if len(raw.annotations):
        ann = raw.annotations
        onset = ann.onset - raw.first_time
        # MNE's convention: 'BAD...' / 'EDGE...' annotations mark stretches to leave out, not events
        bad = np.array([str(d).lower().startswith(("bad", "edge")) for d in ann.description], dtype=bool)
        signals.attrs["bad_segments"] = json.dumps([[float(o), float(d), str(t)] for o, d, t in
                                                    zip(onset[bad], ann.duration[bad], ann.description[bad])])
        if (~bad).any():
            events = Events(onset[~bad], ann.description[~bad], ann.duration[~bad])
    if events is None:  # no annotation events (none, or only stretches marked bad): the trigger channel
        stim = [raw.ch_names[i] for i, t in enumerate(ch_types) if t == "stim"]
        # as MNE chooses: a Neuromag system's composite trigger channel (STI101; older ones STI 014)
        # before its single-bit lines (STI001 ... STI016, which come first in the file and carry
        # one bit of the codes each), else the first stim channel
        stim = [c for c in ("STI101", "STI 014", "STI014") if c in stim] + stim
        if stim:
            ev = mne.find_events(raw, stim_channel=stim[0], shortest_event=1, verbose="error")
            events = Events((ev[:, 0] - raw.first_samp) / sfreq, ev[:, 2].astype(str), ev[:, 2].astype(float))
        else:
            events = Events.empty()
    return Recording(signals, None, events)


def _in_own_folder(name: str, header: Path, key: str) -> None:
    """Refuse a companion file that MNE would read from outside the recording's own folder: MNE
    joins the name onto the header's folder (an absolute name replaces it), so ``/etc/passwd``
    or ``../../secret`` in an uploaded header read a file of the server's as samples (the data
    root's rule, that no path escapes it). A name with Windows separators stays one file name
    of that folder on this system, as MNE reads it."""
    folder = header.parent.resolve()
    target = (header.parent / name).resolve()
    if target != folder and folder not in target.parents:
        raise UnitScopeError(f"{header.name!r} names its {key} as {name!r}, outside its own folder: UnitScope reads "
                             "the files a recording keeps its data in from its own folder only (put them beside it, "
                             "named by file name).")


def _vhdr_companions(path: Path) -> tuple[list[str], list[str]]:
    """The data file (required) and marker file (optional: MNE reads the data without it, with
    no events) a BrainVision header names (``DataFile=``, ``MarkerFile=``), read by MNE's own
    parser of the header (its codepage, its sections; a regex over latin-1 text missed a
    ``Codepage=UTF-7`` header's ``..+AC8-outside``), each refused if it lies outside the
    header's folder (:func:`_in_own_folder`)."""
    try:
        from mne.io.brainvision.brainvision import _aux_hdr_info

        import warnings

        with warnings.catch_warnings():  # (MNE's own reading of the file says it, where it matters)
            warnings.simplefilter("ignore")
            _, cfg, section, _, _ = _aux_hdr_info(str(path), sfreq_override=1.0)
        values = {key: cfg.get(section, key, fallback=None) for key in ("DataFile", "MarkerFile")}
    except Exception:  # noqa: BLE001 - no header MNE parses (reading it says why): its lines as text
        text = path.read_bytes()[:65536].decode("latin1")
        values = {}
        for key in ("DataFile", "MarkerFile"):
            found = re.findall(rf"^\s*{key}\s*[=:]\s*(.+?)\s*$", text, flags=re.M | re.I)
            values[key] = found[0] if found else None
    for key, name in values.items():
        if name:
            _in_own_folder(name, path, key)
    data = [Path(values["DataFile"].replace("\\", "/")).name] if values["DataFile"] else []
    marker = [Path(values["MarkerFile"].replace("\\", "/")).name] if values["MarkerFile"] else []
    if marker and not (path.parent / marker[0]).exists() and path.with_suffix(".vmrk").exists():
        marker = []  # MNE falls back to the .vmrk of the header's own name
    return data, marker


def _set_companions(path: Path) -> list[str]:
    """The ``.fdt`` an EEGLAB ``.set`` keeps its data in, when not embedded (``EEG.data`` a
    file name). MNE also takes the ``.fdt`` of the set's own name, so that one satisfies it.
    The data file named is refused if it lies outside the set's folder (MNE reads that path
    first, wherever it leads), found as MNE finds it (an ``EEG`` struct inside ``EEG`` too)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False, variable_names=["EEG", "data"])
    except Exception:  # MATLAB v7.3 (HDF5) or not a .set at all: the reader says what is wrong
        return []
    eeg = mat.get("EEG", None)
    while eeg is not None and hasattr(eeg, "EEG"):  # (MNE: eeg.get("EEG", eeg))
        eeg = eeg.EEG
    data = getattr(eeg, "data", None) if eeg is not None else mat.get("data")
    if not isinstance(data, str):
        return []
    _in_own_folder(data, path, "data file (EEG.data)")
    return [] if path.with_suffix(".fdt").exists() else [path.with_suffix(".fdt").name]


def missing_companions(path: str | Path) -> dict[str, list[str]]:
    """Files a recording needs beside it that are not there.

    A BrainVision header (``.vhdr``) names its data (``.eeg``, required) and its markers
    (``.vmrk``, optional: without them the recording has no events); an EEGLAB ``.set`` may
    keep its data in a ``.fdt`` (required). Other formats need nothing.

    Returns
    -------
    missing : dict
        ``{"required": [names], "optional": [names]}``, file names only.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    required, optional = [], []
    if path.is_file() and suffix == ".vhdr":
        required, optional = _vhdr_companions(path)
    elif path.is_file() and suffix == ".set":
        required = _set_companions(path)

    def absent(names):
        return [n for n in names if not (path.parent / n).exists()]

    return {"required": absent(required), "optional": absent(optional)}


def _check_companions(path: Path) -> None:
    """Refuse a recording whose data file is missing beside it, or named outside its folder."""
    missing = missing_companions(path)["required"]
    if missing:
        raise UnitScopeError(
            f"{path.name!r} keeps its data in another file, not found beside it: {', '.join(missing)}. "
            f"Put it in the same folder ({str(path.parent)!r}), or upload the files together.")


def is_bids_root(path: str | Path) -> bool:
    """``path`` is a BIDS folder (it holds ``dataset_description.json``)."""
    return (Path(path) / "dataset_description.json").is_file()


def parse_bids(text: str | dict | None) -> dict:
    """BIDS entities choosing recordings, from ``"subject=01,task=reach"`` or a file-name
    style ``"sub-01_task-reach_run-1"`` (or a dict); empty for None or "".

    Raises
    ------
    UnitScopeError
        For an unknown entity or a part that is neither form (the valid entities listed).
    """
    if not text:
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        short = {v: k for k, v in BIDS_ENTITIES.items() if v}
        items = []
        for part in re.split(r"[,_]" if "=" not in text else ",", str(text).strip()):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=") if "=" in text else part.partition("-")
            key = key.strip()
            key = short.get(key, key)
            if not sep or not value.strip():
                raise UnitScopeError(
                    f"Cannot read the BIDS choice {text!r}: give 'subject=01,task=reach' or 'sub-01_task-reach' "
                    f"(entities {', '.join(BIDS_ENTITIES)}).")
            items.append((key, value.strip()))
    out = {}
    for key, value in items:
        if key not in BIDS_ENTITIES:
            raise UnitScopeError(f"Unknown BIDS entity {key!r} in {text!r}; use {', '.join(BIDS_ENTITIES)}.")
        out[key] = str(value)
    return out


def bids_label(entities: dict) -> str:
    """``sub-01_ses-02_task-reach_run-1 (ieeg)`` for a recording's entities."""
    name = "_".join(f"{short}-{entities[k]}" for k, short in BIDS_ENTITIES.items() if short and entities.get(k))
    return f"{name} ({entities['datatype']})" if entities.get("datatype") else name


def _bids_matches(root: Path, want: dict) -> list:
    """mne-bids paths of the EEG/iEEG/MEG recordings under ``root`` matching ``want``: those with no
    entity beyond ``want``'s first, then by path."""
    try:
        import mne_bids
    except ImportError as exc:  # pragma: no cover - extra not installed
        raise ImportError("Reading BIDS folders needs mne-bids: pip install 'unitscope[bids]'") from exc
    matches = mne_bids.find_matching_paths(
        root, subjects=want.get("subject"), sessions=want.get("session"), tasks=want.get("task"),
        acquisitions=want.get("acquisition"), runs=want.get("run"), processings=want.get("processing"),
        recordings=want.get("recording"), datatypes=want.get("datatype"), extensions=_BIDS_EXTENSIONS)
    # a recording split into several files (split-01, split-02, ...) is read from its first
    keep = [m for m in matches if m.suffix in ("eeg", "ieeg", "meg") and m.split in (None, "01", "1")]

    def exact(m) -> bool:  # no entity beyond those asked for (the listing's full choices pick one)
        return {k for k in BIDS_ENTITIES if getattr(m, k, None)} <= set(want)

    return sorted(keep, key=lambda m: (not exact(m), str(m.fpath)))


def source_label(source: str, bids: dict | None = None) -> str:
    """A recording's source as runs, batches and reports name it: the path, and for a BIDS
    folder the recording chosen in it (``study [sub-01_task-reach_run-1 (eeg)]``)."""
    return f"{source} [{bids_label(bids)}]" if bids else str(source)


def bids_recordings(root: str | Path, bids: dict | str | None = None) -> list[dict]:
    """The EEG/iEEG/MEG recordings of a BIDS folder that match ``bids`` (all when None).

    Returns
    -------
    recordings : list of dict
        One per recording, sorted by path: ``entities`` (those of subject, session, task,
        acquisition, run and datatype its file name has), ``path`` (relative to ``root``) and
        ``label`` (:func:`bids_label`).
    """
    import os

    out = []
    for m in _bids_matches(Path(root), parse_bids(bids)):
        ent = {k: str(getattr(m, k)) for k in BIDS_ENTITIES if getattr(m, k, None)}
        out.append({"entities": ent, "path": os.path.relpath(m.fpath, root), "label": bids_label(ent)})
    return out


_EDF_SUFFIXES = {".edf": 2, ".bdf": 3}  # bytes per sample


def vmrk_past_end(path: str | Path, n_times: int) -> str:
    """A BrainVision recording whose markers lie past the end of its data, read as ``n_times``
    samples: its header does not say how many samples follow, so a data file cut short opens
    shorter, and MNE drops the markers past its end without a word. The note saying so, or ""
    (another format, no marker file, every marker within the data)."""
    path = Path(path)
    if path.suffix.lower() != ".vhdr" or not path.is_file():
        return ""
    _, marker = _vhdr_companions(path)
    names = marker or [path.with_suffix(".vmrk").name]
    vmrk = path.parent / names[0]
    if not vmrk.is_file():
        return ""
    text = vmrk.read_bytes().decode("latin1")
    # Mk<n>=<type>,<description>,<position (1-based sample)>,<size>,<channel>[,<date>]
    pos = [int(p) for p in re.findall(r"^\s*Mk\d+\s*=[^,\n]*,[^,\n]*,\s*(\d+)", text, flags=re.M)]
    past = [p for p in pos if p - 1 > n_times]  # (0-based) after the end of the data, as MNE drops them
    if not past:
        return ""
    return (f"{len(past)} of its {len(pos)} markers lie past the end of its data (up to sample {max(past)}; the "
            f"data end at sample {n_times}): the data file may be cut short (an unfinished copy or upload?); those "
            "markers are left out")


def edf_cut_short(path: str | Path) -> tuple[str, str]:
    """An EDF/BDF file shorter than its header says: ``(error, note)``.

    ``error`` when the header itself is cut short (nothing can be read); ``note`` when the
    data records are fewer than the header announces: MNE then reads what the file holds,
    silently (an unfinished copy or upload read as a shorter recording). Both "" for a
    whole file, another format, or a header that does not say (records -1: unknown).
    """
    path = Path(path)
    width = _EDF_SUFFIXES.get(path.suffix.lower())
    if width is None or not path.is_file():
        return "", ""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        try:
            n_rec, dur, ns = int(head[236:244]), float(head[244:252]), int(head[252:256])
        except ValueError:
            if len(head) < 256:
                kind = path.suffix[1:].upper()
                return (f"its header is cut short: the file holds {size} bytes, {'an' if kind == 'EDF' else 'a'} "
                        f"{kind} header alone takes at least 256"), ""
            return "", ""  # not a header we can read: left to MNE
        need = 256 * (ns + 1)
        if size < need:
            return (f"its header is cut short: {ns} signals need {need} bytes of header, the file holds {size} "
                    "(an unfinished copy or upload?)"), ""
        f.seek(256 + ns * 216)
        try:
            per_record = sum(int(f.read(8)) for _ in range(ns))
        except ValueError:
            return "", ""
    rec_bytes = per_record * width
    if n_rec <= 0 or rec_bytes <= 0 or size >= need + n_rec * rec_bytes:
        return "", ""
    held = (size - need) // rec_bytes
    return "", (f"the file holds {held} of the {n_rec} data records its header announces ({held * dur:g} of "
                f"{n_rec * dur:g} s): it was cut short (an unfinished copy or upload?); only what it holds is read")


def read_recording(path: str | Path, *, bids: dict | None = None) -> Recording:
    """Read a recording from any format MNE reads, a BIDS folder, or a BCI2000 ``.dat``.

    Parameters
    ----------
    path : path
        A file (FIF, EDF/BDF, BrainVision ``.vhdr``, EEGLAB ``.set``, ...) or a BIDS root
        (a folder holding ``dataset_description.json``).
    bids : dict or str, optional
        BIDS entities choosing one recording of a BIDS folder (``subject``, ``session``,
        ``task``, ``acquisition``, ``run``, ``datatype``; a dict, or text as
        :func:`parse_bids` reads it); where several match, the first (by path) is read and
        a warning names how many matched.

    Returns
    -------
    recording : Recording
        All channels (data, stim and misc) with ``ch_type`` coords; no target yet.
    """
    import mne

    path = Path(path)
    if not path.exists():
        raise UnitScopeError(f"Recording {str(path)!r} does not exist.")
    bids_root = path.is_dir() and not path.name.lower().endswith(FOLDER_FORMATS)
    if parse_bids(bids) and not bids_root:  # (they were ignored: the file was read, and trained on, without a word)
        given = ", ".join(f"{k}={v}" for k, v in parse_bids(bids).items())
        raise UnitScopeError(f"BIDS entities ({given}) choose a recording of a BIDS folder, but {str(path)!r} is a "
                             "recording itself: leave out --bids, or give the BIDS folder.")
    if bids_root:
        if not is_bids_root(path):
            raise UnitScopeError(
                f"{str(path)!r} is a folder but not a BIDS root (no dataset_description.json) nor a recording "
                f"kept as a folder ({', '.join(FOLDER_FORMATS)}); give a recording file or a BIDS folder."
            )
        import mne_bids

        want = parse_bids(bids)
        matches = _bids_matches(path, want)
        if not matches:
            every = bids_recordings(path)
            raise UnitScopeError(
                f"No EEG/iEEG/MEG recording matching {want or 'anything'} in the BIDS folder {str(path)!r}"
                + (f"; it holds {', '.join(r['label'] for r in every[:10])}{' ...' if len(every) > 10 else ''}."
                   if every else "."))
        if len(matches) > 1:
            logger.warning("%d recordings in %s match %s; reading the first, %s (choose one by its BIDS "
                           "entities: subject, session, task, run, ...)", len(matches), path, want or "anything",
                           matches[0].basename)
        _check_companions(Path(matches[0].fpath))  # (a BIDS folder's header read files anywhere, too)
        raw = mne_bids.read_raw_bids(matches[0], verbose="error")
        return recording_from_raw(raw)
    if path.is_file() and path.stat().st_size == 0:
        raise UnitScopeError(f"{str(path)!r} is empty (0 bytes): an unfinished copy or upload? Copy it again.")
    if path.suffix.lower() == ".dat":
        return _bci2000_recording(path)
    error, note = edf_cut_short(path)
    if error:
        raise UnitScopeError(f"Cannot read {str(path)!r}: {error}.")
    _check_companions(path)
    try:
        raw = mne.io.read_raw(path, preload=False, verbose="error")  # the samples: a stretch at a time
    except ValueError as exc:
        raise UnitScopeError(f"Unsupported or unreadable recording {str(path)!r}: {exc}") from exc
    except Exception as exc:  # corrupt files raise many different errors inside readers
        raise UnitScopeError(f"Cannot read {str(path)!r} ({type(exc).__name__}: {exc}).") from exc
    try:
        rec = recording_from_raw(raw)
    except UnitScopeError:
        raise
    except Exception as exc:  # a file whose header reads but whose samples do not (truncated, say)
        raise UnitScopeError(f"Cannot read the samples of {str(path)!r} ({type(exc).__name__}: {exc}); a file "
                             f"cut short (an unfinished copy or upload) fails so: it holds {path.stat().st_size} "
                             "bytes.") from exc
    note = note or vmrk_past_end(path, rec.n_times)
    if note:
        logger.warning("%s: %s", path.name, note)
        rec.signals.attrs["read_note"] = note
    return rec
