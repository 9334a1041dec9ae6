import pytest

from core.bench import encode
from core.encoding.dre import DREConfig

from encoding_helpers import one_thread

KEYS = {"dre_r", "trf_r", "rtrf_r", "dre_over_trf", "importance_peak_error_ms", "no_init_r",
        "no_subject_r", "fit_seconds", "torch_threads", "device"}


@pytest.mark.slow
def test_bench_keys_on_a_tiny_run():
    with one_thread():
        out = encode.measure(n_subjects=2, n_words=120, config=DREConfig(hidden=8, n_epochs=1))
    assert KEYS <= set(out)
    assert out["dre_over_trf"] == pytest.approx(out["dre_r"] / out["trf_r"], rel=1e-2, abs=2e-3)
    assert out["truth_latency_ms"] == {"word_length": pytest.approx(150.0), "word_freq": pytest.approx(400.0)}
    assert 0 <= out["importance_peak_error_ms"] <= 1500
    assert out["fit_seconds"] > 0 and out["device"] == "cpu"
