"""Common base of the encoders (DRE, TRF, RTRF): scalers, input checks, prediction.

Every encoder is configured at construction and fitted with ``fit(train, valid)``, where
both are encoding data sets (:mod:`core.encoding._data`). Scalers are fitted on ``train``
only. ``prepare(data)`` turns a data set into scaled arrays, ``predict_arrays`` maps those
to scaled predictions, and ``predict(data)`` returns sensor-space predictions. Permutation
importance (:mod:`core.encoding.importance`) works on the scaled arrays.
"""
from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from .._validation import UnitScopeError
from ._data import MIN_EPOCHS, FeatureScaler, MegScaler, check_epochs, onset_index

__all__ = ["Encoder"]

logger = logging.getLogger(__name__)


class Encoder:
    """Base class: fitted state shared by all encoders.

    Attributes (after ``fit``)
    --------------------------
    subjects_ : list of str
        Training subjects; their order defines the subject index.
    ch_names_, feature_names_ : list of str
    n_times_ : int
        Epoch length in samples.
    sfreq_ : float
    onset_ : int
        Index of the locking event (t = 0) in the epoch.
    meg_init : int
        Samples of initial brain state given to the model (0 if none).
    """

    name = "encoder"
    meg_init = 0

    # --- fitting helpers -----------------------------------------------------------------
    def _setup(self, train: xr.Dataset, valid: xr.Dataset) -> None:
        check_epochs(train)
        check_epochs(valid)
        self.subjects_ = sorted(str(s) for s in np.unique(train["subject"].values))
        counts = {s: int((train["subject"].values == s).sum()) for s in self.subjects_}
        few = {s: n for s, n in counts.items() if n < MIN_EPOCHS["train"]}
        if few:
            raise UnitScopeError(
                f"Too few epochs to fit: {few} training epochs per subject, at least "
                f"{MIN_EPOCHS['train']} needed.")
        self.ch_names_ = [str(c) for c in train["channel"].values]
        self.feature_names_ = [str(f) for f in train["feature"].values]
        self.n_times_ = int(train.sizes["time"])
        self.sfreq_ = float(train.attrs["sfreq"])
        self.onset_ = onset_index(train)
        self.times_ = train["time"].values.copy()
        self.first_mask_ = str(train.attrs.get("first_mask", "first_mask"))
        self.series_features_ = [str(f) for f in np.atleast_1d(train.attrs.get("series_features", []))]
        if self.meg_init >= self.n_times_:
            raise UnitScopeError(
                f"meg_init={self.meg_init} samples leaves nothing to predict in epochs of "
                f"{self.n_times_} samples.")
        subj = train["subject"].values.astype(str)
        self.meg_scaler_ = MegScaler().fit(train["meg"].values, subj)
        self.feature_scaler_ = FeatureScaler().fit(train["forcing"].values)
        self.prepare(valid)  # early check: valid is compatible with train

    # --- data in and out ---------------------------------------------------------------
    def subject_index(self, subject) -> np.ndarray:
        """Map subject labels to indices; unseen subjects are an error."""
        if not hasattr(self, "subjects_"):
            raise UnitScopeError(f"This {type(self).__name__} is not fitted yet; call fit() first.")
        subject = np.asarray(subject).astype(str)
        unseen = sorted(str(s) for s in set(subject) - set(self.subjects_))
        if unseen:
            raise UnitScopeError(
                f"Subjects {unseen} were never seen in training; the model knows "
                f"{self.subjects_}. Fit with their epochs in the training split.")
        lookup = {s: i for i, s in enumerate(self.subjects_)}
        return np.array([lookup[s] for s in subject], dtype=np.int64)

    def prepare(self, data: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled model inputs of ``data``.

        Returns
        -------
        meg : ndarray, shape (n_epochs, n_chans, n_times), float32
            Scaled signals (also the target).
        forcing : ndarray, shape (n_epochs, n_features, n_times), float32
            Scaled forcings.
        subject : ndarray of int64, shape (n_epochs,)
            Subject indices.
        """
        check_epochs(data)
        sidx = self.subject_index(data["subject"].values)
        for what, names in (("channel", self.ch_names_), ("feature", self.feature_names_)):
            got = [str(c) for c in data[what].values]
            if got != names:
                raise UnitScopeError(f"The data's {what}s {got[:5]}... differ from training ({names[:5]}...).")
        if data.sizes["time"] != self.n_times_:
            raise UnitScopeError(
                f"Epochs of different lengths: the model was fitted on {self.n_times_} samples, "
                f"got n_times={data.sizes['time']}.")
        subj = data["subject"].values.astype(str)
        meg = self.meg_scaler_.transform(data["meg"].values, subj)
        forcing = self.feature_scaler_.transform(data["forcing"].values)
        return meg, forcing, sidx

    def predict_arrays(self, meg: np.ndarray, forcing: np.ndarray,
                       subject: np.ndarray) -> np.ndarray:
        """Scaled predictions, shape (n_epochs, n_chans, n_times), from scaled inputs."""
        raise NotImplementedError

    def predict(self, data: xr.Dataset) -> xr.DataArray:
        """Predict the signals of ``data`` in sensor units.

        Returns
        -------
        predicted : xarray.DataArray, dims ("epoch", "channel", "time")
            With the coords of ``data["meg"]``; attrs ``model``.
        """
        meg, forcing, sidx = self.prepare(data)
        pred = self.predict_arrays(meg, forcing, sidx)
        pred = self.meg_scaler_.inverse(pred, data["subject"].values.astype(str))
        return data["meg"].copy(data=pred).assign_attrs(model=self.name, meg_init=self.meg_init)
