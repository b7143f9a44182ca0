"""effdl — the support package of *Efficient Methods and Hardware for Deep Learning*.

All logic the chapters show lives here; the notebooks in ``chapters/`` narrate
and call it. The package is built in layers, each importing only the ones
below it (``tests/test_layering.py`` enforces this):

- **base** — ``effdl.data`` (embedded MNIST subset, scikit-learn digits, the
  manifest), ``effdl.models`` (LeNet-300-100, LeNet-5, row-LSTM),
  ``effdl.architectures`` (weightless specs of AlexNet, VGG-16, … for
  accounting) [0], ``effdl.train`` (fit / evaluate, seeds, scoped threads,
  progress bars), ``effdl.numerics`` (number formats, rounding, fixed point)
  [1], ``effdl.validation`` (declared argument constraints).
- **algorithms** — ``effdl.pruning`` [2], ``effdl.sharing`` [3],
  ``effdl.compression`` (the Deep Compression file) [3, 4], ``effdl.coding``
  (Huffman, relative indexes, bit packing) [4], ``effdl.paper_tables`` [4],
  ``effdl.quantization`` (scales, fake quantization, integer-only inference,
  sweeps) [5], ``effdl.ternary`` [6], ``effdl.lowrank`` [7],
  ``effdl.winograd`` [8], ``effdl.hardware`` (energy [0, 1], specs /
  roofline / systolic [9, 14], eie [10], trends [14], gpu_bench [16]),
  ``effdl.training`` (parallel [11], mixed_precision [12], distillation and
  dsd [13]).
- **experiments** — ``effdl.zoo`` (checkpoints in ``data/zoo``),
  ``effdl.precompute`` (the heavy runs behind each chapter, their records and
  the reports that read them), ``effdl.reproduce`` (each chapter's headline
  experiment as JSON), ``effdl.summary`` (every claim next to the papers') [15].
- **views** — ``effdl.viz`` (one module per chapter's figures, widgets and
  animations).
- **front** — ``effdl.cli`` (the ``effdl`` command), ``effdl.book`` (the HTML
  book, the table of contents), ``effdl.assign`` (student versions, nbgrader),
  ``effdl.exercises`` (one module of property checks per chapter).

Vocabulary: a bit width is ``n_bits`` (``n_bits_weight``, ``n_bits_act``, …
when several meet; a list of widths is ``bit_widths``); fields of a stored
format keep the format's names (``index_bits``, ``exponent_bits``,
``mantissa_bits``). Every public function's docstring ends with the chapter
that teaches it.
"""
__version__ = "0.1.0"
