"""Hardware-aware neural architecture search (chapter 17, "Designing efficient models").

:mod:`~effdl.nas.space` (the candidates), :mod:`~effdl.nas.supernet` (the
once-for-all supernet), :mod:`~effdl.nas.costs` (MACs, bytes, roofline
latency, systolic cycles, energy), :mod:`~effdl.nas.predictor` (the latency
lookup table) and :mod:`~effdl.nas.search` (evolutionary and random search).
"""
