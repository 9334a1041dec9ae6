"""Benchmarks run by ``unitscope bench NAME``.

Each benchmark is a module ``core.bench.<name>`` with ``run(*, quick: bool, progress=None)
-> dict``; the CLI prints the dict as one JSON object on the last line. Every benchmark
reports, in the same run, the reference it is compared with, plus ``torch_threads`` and
``device``.
"""
