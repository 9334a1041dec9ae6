"""A session's data source: recordings under the data root, uploads, archives and BIDS
datasets, what is read from them, and the training recipe they give.

:class:`SessionData` holds methods of :class:`dashboard.state.Session` (which inherits
them; it reads and sets the session's parameters), kept apart by topic.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from core._validation import UnitScopeError
from core.io import DATA_CH_TYPES
from core.recording import label_targets
from core.training import TrainConfig
from core.workspace import DataSpec

from .files import archive_recordings, list_recordings, resolve_in_root, save_upload, session_room, unpack_zip, upload_choice

__all__ = ["SessionData"]

logger = logging.getLogger(__name__)
MIN_SFREQ = 8.0  # Hz; the lowest rate core.workspace.load_data accepts


class SessionData:
    """Methods of :class:`dashboard.state.Session` (a mixin: see the module notes)."""

    # ---- data source ---------------------------------------------------------------------
    def recordings(self) -> list[str]:
        """Recordings under the data root, relative paths."""
        return list_recordings(self.root)

    def inspect(self, path: str | None = None) -> None:
        """Read the chosen file (in a thread) and list its channels and events."""
        text = self.path if path is None else path
        try:
            full = resolve_in_root(self.root, text)
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        self.source = "file"
        self._inspect(full, label=text)

    def upload(self, filename: str, data: bytes) -> None:
        """Store one uploaded file for this session and open it (see :meth:`upload_files`)."""
        self.upload_files({filename: data})

    def upload_files(self, files: dict) -> None:
        """Store uploaded files (``{name: bytes}``; names already stored with the same content
        are skipped, so a dropper's growing value can be passed whole) and open the newest
        recording among the session's uploads once the files it keeps its data in are there.
        A file uploaded again under its name with other content replaces it and is read again
        (an archive is unpacked again): a re-exported EDF has the size of the old one [A].

        A recording may come as several files (BrainVision: .vhdr, .vmrk, .eeg; EEGLAB: .set
        and .fdt), which arrive one by one, or as a .zip (a BIDS folder, a CTF .ds folder).
        """
        new, errors = False, []
        with self._upload_lock:  # a server's threads may each bring one file of a recording at once
            if self._upload_dir is None:
                import tempfile

                self._upload_dir = Path(tempfile.mkdtemp(prefix="unitscope-session-"))
            for name, data in files.items():
                if isinstance(data, str):
                    data = data.encode()
                stamp = (len(data), hashlib.blake2b(data, digest_size=16).digest())
                if self._uploads.get(name) == stamp:
                    continue
                self._uploads[name] = stamp
                try:
                    full = save_upload(self._upload_dir, name, data, room=session_room(self._upload_dir))
                except UnitScopeError as exc:
                    errors.append(str(exc))
                    continue
                self._saved_stamps[full.name] = stamp
                self._upload_order = [n for n in self._upload_order if n != full.name] + [full.name]
                new = True
        for msg in errors:
            self.alert(msg)
        if new:
            self.source = "upload"
            self._open_upload()

    def _open_upload(self) -> None:
        """Unpack new archives, choose the upload to show (:func:`upload_choice`) and read it,
        in the inspect worker; files that arrive meanwhile are looked at by the same worker
        before it ends (files of one recording arrive one by one)."""
        with self._upload_lock:
            if self._upload_active:
                self._upload_pending = True
                return
            self._upload_active = True
        self.busy = "inspecting"
        if self._start("inspect", self._upload_worker, on_error=self._upload_failed) is None:
            with self._upload_lock:
                self._upload_active = False
            self.busy = ""

    def _upload_failed(self, msg: str) -> None:
        with self._upload_lock:
            self._upload_active = self._upload_pending = False
        self.busy = ""

    def _upload_worker(self, stop) -> None:
        from core.io import missing_companions

        folder = self._upload_dir
        while not stop.is_set():
            with self._upload_lock:
                order, self._upload_pending = list(self._upload_order), False
            for name in order:
                stamp = self._saved_stamps.get(name)
                if name.lower().endswith(".zip") and self._unpacked.get(name) != stamp:
                    try:
                        unpack_zip(folder / name, folder, room=session_room(folder))
                        self._unpacked[name] = stamp
                    except UnitScopeError as exc:
                        with self._upload_lock:
                            self._upload_order.remove(name)
                        (folder / name).unlink(missing_ok=True)
                        self.alert(str(exc))
                        order = [n for n in order if n != name]
            path, note = upload_choice(folder, order)
            key = None if path is None else (str(path), tuple(missing_companions(path)["optional"]),
                                             self._stamps_behind(path.relative_to(folder)))
            if key is not None and key != self._upload_opened:
                self.param.update(recording_info={}, target="", picks=[])
                info = self._read_info(path, str(path.relative_to(folder)) + ("/" if path.is_dir() else ""))
                info.update(self._archive_of(path))
                self._upload_opened = key
                self._apply_info(info)
                if note:
                    self.alert(note, "info")
            elif path is None and note:
                self.alert(note, "info")
            with self._upload_lock:
                if not self._upload_pending:
                    self._upload_active = False
                    break
        self.busy = ""

    def _stamps_behind(self, rel: Path) -> tuple:
        """(size, digest) of the uploaded files a recording at ``rel`` (under the upload folder)
        may come from: those named as its top folder or file up to the first dot (``rec.vhdr``,
        ``rec.eeg``, ``rec.vmrk``; ``study.zip`` for ``study/...``)."""
        base = rel.parts[0].split(".")[0]
        return tuple(sorted((n, s) for n, s in self._saved_stamps.items() if n.split(".")[0] == base))

    def _archive_of(self, path: Path) -> dict:
        """For a recording unpacked from an uploaded .zip that holds several: the archive's name
        and its recordings (``archive``, ``archive_recordings``: paths under the upload folder)."""
        folder = self._upload_dir
        if folder is None or folder not in path.parents:
            return {}
        first = path.relative_to(folder).parts[0]
        if not (folder / f"{first}.zip").is_file():
            return {}
        found = [str(f.relative_to(folder)) for f in archive_recordings(folder, f"{first}.zip")]
        return {"archive": f"{first}.zip", "archive_recordings": found} if len(found) > 1 else {}

    def choose_in_archive(self, relpath: str) -> None:
        """Read another recording of the uploaded archive shown (one of
        ``recording_info["archive_recordings"]``)."""
        info = self.recording_info
        if relpath not in info.get("archive_recordings", []):
            self.alert(f"{relpath!r} is not a recording of the uploaded archive shown.")
            return
        if relpath == info["label"]:
            return
        self._inspect(self._upload_dir / relpath, label=relpath,
                      extra={k: info[k] for k in ("archive", "archive_recordings")})

    @staticmethod
    def _read_info(path: Path, label: str, bids: dict | None = None) -> dict:
        """Read a recording and describe it (``summary()``, path, label, channel types); a BIDS
        folder's also lists its recordings (``bids_recordings``) and the one read
        (``bids_chosen``: the first that ``bids`` matches)."""
        from core.io import bids_recordings, is_bids_root, read_recording

        try:
            rec = read_recording(path, bids=bids or None)
        except UnitScopeError as exc:  # named as the user knows it: an upload's server folder stays out
            if str(path) not in str(exc):
                raise
            raise UnitScopeError(str(exc).replace(str(path), label)) from exc
        info = rec.summary()
        info.update(path=str(path), label=label, ch_types_list=rec.ch_types,
                    # onsets and types, for what a label trial holds (trial_overlap)
                    event_table=(rec.events.onset.tolist(), [str(t) for t in rec.events.type]))
        if is_bids_root(path):  # (a CTF .ds folder is none)
            info.update(bids_recordings=bids_recordings(path), bids_chosen=bids_recordings(path, bids)[0])
        return info

    def _inspect(self, full: Path, *, label: str, bids: dict | None = None, extra: dict | None = None) -> None:
        key = (str(full), repr(bids))
        if self.running("inspect"):
            # the same file asked for again while it is read (Enter in the path box, then Open) is
            # the same request; another waits (the inputs shown still belong to the one being read)
            if self._inspect_key[0] != key:
                self.alert(f"Still reading {self._inspect_key[1]}: open {label} when it is shown.", "warning")
            return
        self._inspect_key = (key, label)
        self.param.update(busy="inspecting", recording_info={}, target="", picks=[])
        self._start("inspect", lambda stop: {**self._read_info(full, label, bids), **(extra or {})},
                    on_done=self._on_loop(self._apply_info, "inspect"),
                    on_error=self._on_loop(lambda m: setattr(self, "busy", ""), "inspect"))

    def choose_bids(self, entities: dict) -> None:
        """Read another recording of the BIDS folder shown (its entities, as listed in
        ``recording_info["bids_recordings"]``)."""
        info = self.recording_info
        if not info.get("bids_recordings"):
            self.alert("Choose a recording of a BIDS folder: the recording shown is not one.")
            return
        if entities == info["bids_chosen"]["entities"]:
            return
        self._inspect(Path(info["path"]), label=info["label"], bids=dict(entities))

    def _apply_info(self, info: dict) -> None:
        """Show a recording just read: its channels, a default target and the input picks."""
        # [A] a continuous channel first (e.g. a speed or gaze trace), else event labels
        misc = self._trace_channels(info)
        default = misc[0] if misc else (label_targets(info["events"]) or [""])[0]
        self.param.update(busy="", recording_info=info, target=default, picks=self._inputs_of(info, default),
                          l_freq=None, h_freq=None, resample_to=None)
        if info.get("read_note"):  # e.g. a file cut short, read as a shorter recording
            self.alert(f"{info.get('label', 'The recording')}: {info['read_note']}.", "warning")

    @staticmethod
    def _inputs_of(info: dict, target: str) -> list[str]:
        """The default inputs of a recording read: its data channels but the target and, [A] as
        MNE does, those the file marks bad (used only when picked by name)."""
        bads = set(info.get("bads", []))
        return [c for c, t in zip(info["ch_names"], info["ch_types_list"])
                if t in DATA_CH_TYPES and c != target and c not in bads]

    def default_picks(self) -> list[str]:
        """:meth:`_inputs_of` the recording inspected, for the target chosen."""
        return self._inputs_of(self.recording_info, self.target) if self.recording_info else []

    def target_options(self) -> list[str]:
        """Targets the inspected file offers: non-data channels first, then data channels, events.
        Stim channels are left out: their trigger codes are offered as the events' labels."""
        info = self.recording_info
        if not info:
            return []
        rest = [c for c, t in zip(info["ch_names"], info["ch_types_list"]) if t in DATA_CH_TYPES]
        return self._trace_channels(info) + rest + label_targets(info.get("events", {}))

    @staticmethod
    def _trace_channels(info: dict) -> list[str]:
        """The recording's channels that are neither data nor stim (e.g. a speed or gaze trace): a
        stim channel's values are trigger codes, offered as the events' labels instead."""
        return [c for c, t in zip(info["ch_names"], info["ch_types_list"]) if t not in (*DATA_CH_TYPES, "stim")]

    def pick_options(self) -> list[tuple[str, str]]:
        """(channel, type) pairs the inspected file offers as inputs (every channel but the target)."""
        info = self.recording_info
        if not info:
            return []
        return [(c, t) for c, t in zip(info["ch_names"], info["ch_types_list"]) if c != self.target]

    def prep_problems(self) -> list[str]:
        """What is wrong with the channel picks, band-pass and resampling of a user file
        (one sentence each; empty when all is well or for the demo)."""
        info = self.recording_info
        if self.source == "demo" or not info:
            return []
        out = []
        known = set(info["ch_names"])
        if not self.picks:
            out.append("No input channel picked: choose at least one channel.")
        unknown = [c for c in self.picks if c not in known]
        if unknown:
            out.append(f"Picked channel(s) {unknown[:5]} are not in the recording.")
        if self.target in self.picks:
            out.append(f"The target channel {self.target!r} cannot also be an input channel.")
        rate = float(info["sfreq"])
        fs, resampled = self.resample_to, False
        if fs is not None:
            if fs < MIN_SFREQ:
                out.append(f"Resampling to {fs:g} Hz is too low for the decoders (at least {MIN_SFREQ:g} Hz).")
            elif fs > rate:
                out.append(f"Resampling to {fs:g} Hz is above the file's rate ({rate:g} Hz): upsampling adds "
                           "nothing; leave it empty to keep the rate.")  # [A] no upsampling from the app
            else:
                rate, resampled = float(fs), True
        nyq = rate / 2  # the filter runs after resampling (core.workspace.load_data)
        where = f"({rate:g} Hz sampling{' after resampling' if resampled else ''})"
        lo, hi = self.l_freq, self.h_freq
        if lo is not None and lo <= 0:
            out.append(f"l_freq={lo:g} Hz: the high-pass edge must be above 0 Hz (leave it empty for none).")
        if hi is not None and hi <= 0:
            out.append(f"h_freq={hi:g} Hz: the low-pass edge must be above 0 Hz (leave it empty for none).")
        if hi is not None and hi >= nyq:
            out.append(f"h_freq={hi:g} Hz is at or above the Nyquist frequency, {nyq:g} Hz {where}: "
                       f"choose less than {nyq:g} Hz.")
        if lo is not None and lo > 0 and lo >= nyq:
            out.append(f"l_freq={lo:g} Hz is at or above the Nyquist frequency, {nyq:g} Hz {where}.")
        if lo is not None and hi is not None and 0 < hi <= lo:
            out.append(f"l_freq={lo:g} Hz must be below h_freq={hi:g} Hz.")
        if self.target.startswith("events"):
            if self.tmin is None or self.tmax is None or self.tmax <= self.tmin:
                out.append(f"The trial window must end after it starts: from {self.tmin} to {self.tmax} s.")
            elif self.tmax - self.tmin > info["duration_s"]:
                out.append(f"Trials of {self.tmax - self.tmin:g} s are longer than the recording "
                           f"({info['duration_s']:g} s).")
        return out

    def trial_overlap(self) -> str:
        """For label targets, when the trials are longer than the time between events (median),
        e.g. 4-s trials of auditory stimuli 0.5 s apart, in one sentence
        (:func:`core.cautions.trial_overlap_note`); else ""."""
        import numpy as np

        from core.cautions import trial_overlap_note
        from core.recording import Events, target_types

        info = self.recording_info
        if not info or not self.target.startswith("events"):
            return ""
        events = info.get("event_table")
        if events is None:
            return ""
        note = trial_overlap_note(Events(events[0], events[1], np.zeros(len(events[0]))), target_types(self.target),
                                  self.tmin, self.tmax)
        return f"{note[0].upper()}{note[1:]}: shorten the trial window to what one event is followed by." if note else ""

    def demo_recipe(self) -> dict:
        """The shipped decoder's recipe (``core.workspace.DEMO_TRAIN``: a constant learning rate)
        when the choices are the plain demo and a decoder shipped for it, else {}."""
        from core.workspace import DataSpec, demo_recipe

        if self.source != "demo":
            return {}
        return demo_recipe(DataSpec(ipsi_fraction=float(self.demo_ipsi or 0.0)), self.model_kind)

    def train_config(self):
        """The :class:`core.training.TrainConfig` that **Train** uses: the chosen decoder and
        epochs, with :meth:`demo_recipe`, so that retraining Deep4 on the plain demo for 23 or more
        epochs trains the shipped decoder again (its weights bit for bit with two torch threads;
        the last bits differ with one)."""
        return TrainConfig(model=self.model_kind, **{**self.demo_recipe(), "max_epochs": int(self.max_epochs)})

    def data_spec(self):
        """The :class:`core.workspace.DataSpec` of the chosen data; raises UnitScopeError with
        the first problem (see :meth:`prep_problems`)."""
        if self.source == "demo":
            return DataSpec(ipsi_fraction=float(self.demo_ipsi))
        info = self.recording_info
        if not info:
            raise UnitScopeError("Choose and inspect a recording first (Data: file or upload).")
        if not self.target:
            raise UnitScopeError("Choose the target: a channel holding a continuous trace, or events.")
        problems = self.prep_problems()
        if problems:
            raise UnitScopeError(problems[0])
        return DataSpec(source=info["path"], target=self.target, picks=list(self.picks), l_freq=self.l_freq,
                        h_freq=self.h_freq, sfreq=self.resample_to, tmin=float(self.tmin), tmax=float(self.tmax),
                        bids=info["bids_chosen"]["entities"] if info.get("bids_chosen") else None)
