"""Synthetic multi-subject reading data set with known ground truth (METHODS.md 3.9).

Every subject reads sentences word by word (one word every 0.5-0.75 s, 0.3 s on screen,
a 1-2 s pause between sentences). A shared latent linear dynamical system (d = 8: two
cascades of four leaky stages, a stable block-triangular ``A``) is driven by each word's
onset impulse:

* the *visual* pathway (cascade 1) peaks ``latency_length`` after the word; its input gain
  saturates with word length, ``1.5 (1 - exp(-length / 3))``;
* the *lexical* pathway (cascade 2) peaks ``latency_freq`` after the word; its gain is a
  threshold in log frequency, ``sigmoid(2.5 (4 - zipf))`` (rare words respond);
* both gains are multiplied by an alpha gate, ``sigmoid(-alpha_gating (z - z_open)) /
  gate_fraction``, where ``z`` is the z-scored log amplitude of the subject's ongoing 10 Hz
  alpha rhythm at the word's onset and ``z_open`` its ``gate_fraction`` quantile: words
  evoke strong responses while pre-stimulus alpha is low and little otherwise (mean gate
  1), a multiplicative interaction no linear model of the forcings can represent; alpha
  amplitude drifts slowly (``alpha_timescale``), so the initial brain state tells the gate;
* process noise keeps spontaneous latent activity going in both pathways (standard
  deviation ``spontaneous`` at the pathway outputs).

Sensors (40 by default) see the two pathways' last stages through a subject-specific
mixing matrix, the alpha rhythm through a subject-specific topography, slow ongoing
fluctuations (two Ornstein-Uhlenbeck sources with a 1 s time constant, amplitude ``slow``:
stimulus-independent, predictable from the initial brain state only), fast spatially
correlated background noise and white noise. Every subject's sensor patterns are patterns
shared by all subjects plus a subject deviation (``subject_variability``). Epochs run from
``tmin`` to ``tmax`` around every word (they overlap, as in MOUS).

Ground truth in the returned data set: attrs ``truth_latency_word_length`` and
``truth_latency_word_freq`` (s, the peak of each pathway's impulse response), variables
``alpha_gate`` (epoch) and ``truth_mixing`` (subject, pathway, channel).

[A] All numbers (gains, gate, latencies, noise levels, 60 Hz, 2 s epochs) are our choices;
the published method specifies only the structure. They were set so that each ingredient
is visible, not so that the linear baselines fail: the TRF still captures the mean evoked
responses and their feature dependence, the RTRF also the initial state's linear
continuation; only the gate needs the DRE's nonlinearity.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import lfilter
from scipy.special import ndtri

from .._validation import check_range, ensure_int
from ._data import make_epochs

__all__ = ["simulate_reading", "READING_FEATURES", "length_gain", "freq_gain"]

READING_FEATURES = ("first_mask", "word_freq", "word_length", "word_onset")  # sorted by name
_N_STAGES = 4


def length_gain(length):
    """Visual-pathway gain: saturates with word length (number of characters)."""
    return 1.5 * (1.0 - np.exp(-np.asarray(length, float) / 3.0))


def freq_gain(zipf):
    """Lexical-pathway gain: a threshold in log10 frequency (Zipf scale); rare words respond."""
    return 1.0 / (1.0 + np.exp(-2.5 * (4.0 - np.asarray(zipf, float))))


def _cascade_pole(latency: float, sfreq: float) -> float:
    """Pole ``a`` of four identical leaky stages whose impulse response peaks at ``latency``.

    The response ``C(n + 3, 3) a**n`` grows while ``(n + 4) a > n + 1``; the pole below puts
    the switch half a sample after ``latency``.
    """
    n = latency * sfreq
    return (n + 0.5) / (n + _N_STAGES - 0.5)


def _cascade(u: np.ndarray, a: float) -> np.ndarray:
    """Run input ``u`` (..., n_times) through the cascade; the last stage is the output."""
    x = u
    for _ in range(_N_STAGES):
        x = lfilter([1.0 - a], [1.0, -a], x, axis=-1)
    return x


def _impulse_peak(a: float, sfreq: float) -> tuple[float, float]:
    """(latency in s, peak value) of the cascade's impulse response."""
    h = _cascade(np.r_[1.0, np.zeros(int(5 * sfreq))], a)
    return float(np.argmax(h) / sfreq), float(h.max())


def _ou(rng: np.random.Generator, n: int, tau: float, sfreq: float) -> np.ndarray:
    """Unit-variance Ornstein-Uhlenbeck process with time constant ``tau`` seconds."""
    rho = np.exp(-1.0 / (tau * sfreq))
    e = rng.standard_normal(n) * np.sqrt(1 - rho**2)
    e[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -rho], e)


def simulate_reading(*, n_subjects: int = 10, n_words: int = 800, n_sensors: int = 40,
                     sfreq: float = 60.0, tmin: float = -0.5, tmax: float = 1.5,
                     latency_length: float = 0.15, latency_freq: float = 0.40,
                     alpha_gating: float = 5.0, alpha_timescale: float = 4.0,
                     spontaneous: float = 0.5, slow: float = 0.5, noise: float = 0.6,
                     subject_variability: float = 0.6, gate_fraction: float = 0.3,
                     seed: int | None = 0) -> xr.Dataset:
    """Simulate the multi-subject reading data set.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (``"S01"``, ...).
    n_words : int
        Words (= epochs) per subject.
    n_sensors : int
        Number of sensors.
    sfreq : float
        Sampling frequency in Hz (at least 40, so the 10 Hz alpha rhythm is resolved).
    tmin, tmax : float
        Epoch window around each word onset, seconds.
    latency_length, latency_freq : float
        Peak latencies (s) of the pathways that word length and word frequency drive.
    alpha_gating : float
        Strength of the alpha gate (0: no gating).
    gate_fraction : float
        Fraction of the time the gate is open (mean gate 1 in any case).
    alpha_timescale : float
        Time constant (s) of the alpha amplitude fluctuations.
    spontaneous : float
        Standard deviation of the spontaneous latent activity at the pathway outputs.
    slow : float
        Standard deviation of the slow ongoing fluctuations per source.
    noise : float
        Standard deviation of the white sensor noise (the evoked peaks are about 1).
    subject_variability : float
        Relative standard deviation of each subject's sensor patterns (pathway mixing, alpha
        and slow topographies) around patterns shared by all subjects.
    seed : int or None
        Seed of the simulator's own random generator.

    Returns
    -------
    data : xarray.Dataset
        An encoding data set (:mod:`core.encoding._data`): ``meg`` (epoch, channel, time) in
        arbitrary units, ``forcing`` (epoch, feature, time) with features
        :data:`READING_FEATURES` (raw values: length in characters, frequency in Zipf units,
        pulses over each word's presentation), plus the ground truth listed in the module
        docstring.
    """
    n_subjects = ensure_int("n_subjects", n_subjects)
    check_range("n_subjects", n_subjects, low=1)
    n_words = ensure_int("n_words", n_words)
    check_range("n_words", n_words, low=20)
    check_range("sfreq", sfreq, low=40.0)
    check_range("tmin", tmin, high=0.0, high_inclusive=False)
    check_range("tmax", tmax, low=max(latency_length, latency_freq) + 0.1)
    check_range("gate_fraction", gate_fraction, low=0.0, high=1.0, low_inclusive=False)
    z_open = float(ndtri(gate_fraction))  # log-alpha quantile where the gate is half open
    rng = np.random.default_rng(seed)
    n_times = int(round((tmax - tmin) * sfreq))
    times = tmin + np.arange(n_times) / sfreq
    duration = 0.3
    poles = [_cascade_pole(latency_length, sfreq), _cascade_pole(latency_freq, sfreq)]
    peaks = [_impulse_peak(a, sfreq) for a in poles]
    # input scale giving unit output variance for white process noise
    norms = np.array([np.sqrt(np.sum(_cascade(np.r_[1.0, np.zeros(int(5 * sfreq))], a) ** 2))
                      for a in poles])

    # Shared part of the sensor mixing; each subject deviates from it.
    # Shared sensor patterns (same sensor array, similar anatomy); each subject deviates
    # from them by ``subject_variability`` (relative standard deviation).
    base = {"mixing": rng.standard_normal((2, n_sensors)),
            "alpha": np.abs(rng.standard_normal(n_sensors)),
            "slow": rng.standard_normal((n_sensors, 2)) / np.sqrt(2)}
    background_mixing = rng.standard_normal((n_sensors, 6)) / np.sqrt(6)

    def subject_pattern(name):
        dev = rng.standard_normal(base[name].shape) * (np.sqrt(0.5) if name == "slow" else 1.0)
        return (base[name] + subject_variability * dev) / np.sqrt(1 + subject_variability**2)

    megs, forcings, subjects, sentences, onsets, gates = [], [], [], [], [], []
    mixings = []
    for s in range(n_subjects):
        # --- the word stream -------------------------------------------------------------
        word_on, sent_id, t, sent = [], [], 2.0, 0
        while len(word_on) < n_words:
            for _ in range(rng.integers(6, 15)):
                word_on.append(t)
                sent_id.append(sent)
                t += duration + rng.uniform(0.2, 0.45)
            t += rng.uniform(1.0, 2.0)
            sent += 1
        word_on, sent_id = np.array(word_on[:n_words]), np.array(sent_id[:n_words])
        length = np.clip(1 + rng.poisson(4.5, n_words), 1, 14).astype(float)
        zipf = np.clip(6.8 - 0.25 * length + rng.normal(0, 0.9, n_words), 1.0, 7.0)
        n_total = int((word_on[-1] + tmax + 2.0) * sfreq)
        on_idx = np.round(word_on * sfreq).astype(int)

        # --- alpha rhythm and its gate ---------------------------------------------------
        log_amp = _ou(rng, n_total, alpha_timescale, sfreq)  # z-scored log amplitude
        f_alpha = rng.uniform(9.0, 11.0)
        # phase diffusion of 4 rad^2/s: the rhythm stays coherent for about 0.25 s
        phase = np.cumsum(2 * np.pi * f_alpha / sfreq
                          + np.sqrt(4.0 / sfreq) * rng.standard_normal(n_total))
        alpha = np.exp(0.5 * log_amp) * np.cos(phase)
        # open (gain 1 / gate_fraction) while alpha is below its gate_fraction quantile
        gate = 1.0 / (1.0 + np.exp(alpha_gating * (log_amp[on_idx] - z_open))) / gate_fraction

        # --- latent dynamics -------------------------------------------------------------
        u = rng.standard_normal((2, n_total)) * (spontaneous / norms)[:, None]  # process noise
        u[0, on_idx] += gate * length_gain(length) / peaks[0][1]
        u[1, on_idx] += gate * freq_gain(zipf) / peaks[1][1]
        sources = np.stack([_cascade(u[i], poles[i]) for i in range(2)])  # (2, n_total)

        # --- sensors ---------------------------------------------------------------------
        mixing = subject_pattern("mixing")  # (pathway, sensor)
        alpha_topo = 0.8 * np.abs(subject_pattern("alpha"))  # (sensor,)
        background = 0.5 * background_mixing @ np.stack(
            [_ou(rng, n_total, 0.05, sfreq) for _ in range(6)])
        background += slow * subject_pattern("slow") @ np.stack([_ou(rng, n_total, 1.0, sfreq) for _ in range(2)])
        meg = (mixing.T @ sources + alpha_topo[:, None] * alpha[None]
               + background + noise * rng.standard_normal((n_sensors, n_total)))

        # --- epochs and forcings ---------------------------------------------------------
        values = np.stack([np.ones(n_words), zipf, length])  # onset, freq, length
        for w in range(n_words):
            i0 = on_idx[w] + int(round(tmin * sfreq))
            if i0 < 0 or i0 + n_times > n_total:
                continue
            f = np.zeros((4, n_times), np.float32)
            near = np.flatnonzero((word_on + duration > word_on[w] + tmin)
                                  & (word_on < word_on[w] + tmax))
            for v in near:
                shown = (times >= word_on[v] - word_on[w]) & (times < word_on[v] - word_on[w] + duration)
                f[1:, shown] = values[[1, 2, 0], v][:, None]
                if v == w:
                    f[0, shown] = 1.0
            megs.append(meg[:, i0:i0 + n_times])
            forcings.append(f)
            subjects.append(f"S{s + 1:02d}")
            sentences.append(s * 100000 + sent_id[w])
            onsets.append(word_on[w])
            gates.append(gate[w])
        mixings.append(mixing)

    data = make_epochs(
        np.stack(megs).astype(np.float32), np.stack(forcings), subject=subjects, sfreq=sfreq,
        tmin=tmin, ch_names=[f"MEG{i + 1:03d}" for i in range(n_sensors)],
        feature_names=READING_FEATURES, sentence=sentences, onset_time=onsets,
        attrs={"source": "unitscope synthetic reading", "seed": -1 if seed is None else int(seed),
               "truth_latency_word_length": peaks[0][0], "truth_latency_word_freq": peaks[1][0],
               "units": "a.u."},
    )
    data["alpha_gate"] = ("epoch", np.asarray(gates, np.float32))
    data["truth_mixing"] = xr.DataArray(
        np.stack(mixings), dims=("truth_subject", "pathway", "channel"),
        coords={"truth_subject": [f"S{s + 1:02d}" for s in range(n_subjects)],
                "pathway": ["visual_length", "lexical_freq"]})
    return data
