"""effdl — the support package of *Efficient Methods and Hardware for Deep Learning*.

All logic the chapters show lives here; the notebooks in ``chapters/`` narrate
and call it. Module map (chapter that teaches it in brackets):

- ``effdl.data`` — embedded MNIST subset, scikit-learn digits, optional full MNIST [all]
- ``effdl.models`` — LeNet-300-100, LeNet-5, row-LSTM [all]
- ``effdl.architectures`` — weightless specs of AlexNet, VGG-16, … for accounting [0]
- ``effdl.train`` — fit / evaluate, seeds, device, progress bars [all]
- ``effdl.zoo`` — pretrained checkpoints in ``data/zoo`` [all]
- ``effdl.numerics`` — number formats, rounding, fixed point [1]
- ``effdl.hardware.energy`` — energy per operation (Horowitz, ISSCC 2014) [0, 1]
- ``effdl.reproduce`` — each chapter's headline experiment as JSON
"""
__version__ = "0.1.0"
