"""The book's views: figures, animations, tables and widgets, one module per chapter topic.

``style`` holds what several chapters share (palette, text width, the figure
factory, Markdown tables, widget images, offline animations, and the few plots
several chapters draw); every other module belongs to one chapter (or a run of
chapters) of ``book.yml`` (chapter 9 has two, one per algorithm module it draws):

========================  ==============================================
``overview``              0  Why efficiency
``numbers``               1  Number representations (bit-width widget)
``pruning``               2  Pruning (sparsity widget)
``sharing``               3  Weight sharing (weight-sharing widget)
``coding``                4  Huffman coding and Deep Compression
``quantization``          5  Quantization (bit-width widget)
``ternary``               6  Binary and ternary nets
``lowrank``               7  Low-rank approximation
``winograd``              8  Winograd convolution (time breakdown, speed-ups)
``design``                17 Designing efficient models: the blocks (pictures, MACs vs time, roofline)
``nas``                   17 Designing efficient models: the search (Pareto fronts, predictor, constraint widget)
``roofline``              9  The roofline and the TPU (batch-size animation and widget)
``systolic``              9  Systolic arrays: three dataflows (animations, dataflow widget)
``eie``                   10 EIE (dataflow animation, density widget)
``flipbook``              1–3, 5, 10 The widgets' states as flip-books that play without a kernel
``training``              11–13 Parallelization, mixed precision, distillation and DSD
``training_hardware``     14, 16 Hardware for training, measured on a GPU
``summary``               15 Wrap-up
``transformer``           18 Where the time goes in a transformer (batch / context widget)
``llm_quant``             19 Quantizing a language model (bits / group widget)
``llm_prune``             20 Pruning a language model (sparsity widget)
``speculative``           21 Decoding faster (speculative rounds, speed-up vs n_draft, α / c widget)
========================  ==============================================

Views take results computed
by the algorithm layers and never recompute a model; a widget binds controls
to a pure ``*_state`` function (which calls the algorithms) and draws its
result with the matching ``*_figure``. Chapters use ``from effdl import viz``
and call ``viz.<module>.<function>``: the modules share their names with the
algorithms they draw.
"""
from . import (coding, design, eie, flipbook, llm_prune, llm_quant, lowrank, nas, numbers, overview, pruning,
               quantization, roofline, sharing, speculative, style, summary, systolic, ternary, training,
               training_hardware, transformer, winograd)

__all__ = ["coding", "design", "eie", "flipbook", "llm_prune", "llm_quant", "lowrank", "nas", "numbers", "overview",
           "pruning", "quantization", "roofline", "sharing", "speculative", "style", "summary", "systolic", "ternary",
           "training", "training_hardware", "transformer", "winograd"]
