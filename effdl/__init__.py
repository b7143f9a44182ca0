"""effdl — the support package of *Efficient Methods and Hardware for Deep Learning*.

All logic the chapters show lives here; the notebooks in ``chapters/`` narrate
and call it. Module map (chapter that teaches it in brackets):

- ``effdl.data`` — embedded MNIST subset, scikit-learn digits, optional full MNIST [all]
- ``effdl.models`` — LeNet-300-100, LeNet-5, row-LSTM [all]
- ``effdl.architectures`` — weightless specs of AlexNet, VGG-16, … for accounting [0]
- ``effdl.train`` — fit / evaluate, seeds, device, progress bars [all]
- ``effdl.zoo`` — pretrained checkpoints in ``data/zoo`` [all]
- ``effdl.numerics`` — number formats, rounding, fixed point [1]
- ``effdl.pruning`` — magnitude pruning, masks, schedules, channel pruning [2]
- ``effdl.sharing`` — weight sharing by k-means, trained quantization [3]
- ``effdl.compression`` — the Deep Compression file format and pipeline [3, 4]
- ``effdl.coding`` — Huffman coding, relative indexes, bit packing [4]
- ``effdl.quantization`` — statistics, fixed point / scale choice, fake quantization (STE),
  integer-only LeNet inference, torch.ao oracle [5]
- ``effdl.paper_tables`` — Deep Compression's per-layer tables as a calculator [4]
- ``effdl.lowrank`` — SVD, conv decomposition, tensor-train layers [7]
- ``effdl.winograd`` — Winograd F(2×2,3×3) and F(4×4,3×3) convolution [8]
- ``effdl.ternary`` — binary, ternary (TWN) and trained ternary (TTQ) weights [6]
- ``effdl.hardware.energy`` — energy per operation (Horowitz, ISSCC 2014) [0, 1]
- ``effdl.hardware.specs`` / ``roofline`` / ``systolic`` — chips, rooflines, the TPU's systolic array [9, 14]
- ``effdl.hardware.eie`` — the EIE sparse accelerator, cycle by cycle [10]
- ``effdl.training.parallel`` — data / model / pipeline parallelism on torch.distributed [11]
- ``effdl.training.mixed_precision`` — fp16 emulation, loss scaling, Tensor-Core arithmetic [12]
- ``effdl.training.distillation`` / ``dsd`` — knowledge distillation; dense-sparse-dense training [13]
- ``effdl.hardware.trends`` — microprocessor trend data (the end of Dennard scaling) [14]
- ``effdl.hardware.gpu_bench`` — GPU measurements, only where CUDA is present [16]
- ``effdl.summary`` — every headline experiment next to the papers' figures [15]
- ``effdl.precompute`` — the chapters' heavy experiments, run once into ``data/zoo``
- ``effdl.exercises`` — property checks for the chapters' exercises
- ``effdl.reproduce`` — each chapter's headline experiment as JSON
"""
__version__ = "0.1.0"
