"""Huffman coding and sparse encoding — chapter 4, "Huffman coding and Deep Compression".

Implements the last two stages of Han, Mao & Dally, "Deep Compression:
Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman
Coding", ICLR 2016: the relative-index sparse format of §4 (Figure 2) and the
Huffman coding of §5, plus fixed-width bit packing for the compressed file.

**Huffman coding.** :func:`huffman_code` builds an optimal prefix code from
symbol counts and returns it in *canonical* form (DEFLATE's convention: codes
of equal length are consecutive binary numbers in symbol order, shorter codes
come first). A canonical code is fully described by its code lengths
(:func:`code_lengths` / :func:`canonical_code`), so a file stores one small
integer per symbol instead of a tree. Ties in the Huffman merge are broken
by node order (symbols first, by value; then merged nodes, oldest first), so
the same counts always give the same code. A lone symbol gets the
1-bit code ``"0"``. :func:`huffman_encode` packs codewords MSB-first into
bytes; :func:`huffman_decode` is its bit-exact inverse, driven by a lookup
table on the next ``min(max_len, 16)`` bits.

>>> code = huffman_code({0: 5, 1: 2, 2: 1, 3: 1})
>>> code
{0: '0', 1: '10', 2: '110', 3: '111'}
>>> data, n_bits = huffman_encode([0, 2, 1, 3, 0], code)    # 0 110 10 111 0
>>> data.hex(), n_bits
('6b80', 10)
>>> huffman_decode(data, n_bits, code_lengths(code), 5).tolist()
[0, 2, 1, 3, 0]

**Relative index.** Deep Compression stores a pruned layer as (index, value)
pairs, where the index is the *gap* to the previous stored entry in a fixed
``index_bits`` width (Figure 2). Here the gap is the number of zeros between
two stored entries (the first entry counts the zeros from the start of the
array), so it lies in ``0 … 2**index_bits − 1`` and entry ``k`` sits at
position ``prev + gap + 1``. The paper's "diff" is a position difference,
this gap plus one (3-bit index: diffs 1 … 8; its Figure 2 prints 1, 3, 8, 3
for the example below). When more than ``2**index_bits − 1`` zeros precede a
non-zero, a *filler* entry — value 0, gap ``2**index_bits − 1`` — is stored at
position ``prev + 2**index_bits``, as often as needed: ``g`` zeros before a
non-zero cost ``g // 2**index_bits`` fillers. Trailing zeros cost nothing (the
decoder knows the length). Zero means "pruned", so encode the weights and
then map the stored values to cluster indexes for the file; a filler's value
decodes to 0 again.

>>> x = [0, 3.4, 0, 0, 0.9] + [0] * 10 + [1.7]           # paper, Figure 2
>>> gaps, values, n_fillers = relative_index_encode(x, 3)
>>> gaps.tolist(), values.tolist(), n_fillers
([1, 2, 7, 2], [3.4, 0.9, 0.0, 1.7], 1)

An array of any shape is flattened in row-major (C) order: that is how torch
lays out a weight, so ``weight.flatten()`` and ``reshape`` are the whole
conversion, and for a ``Linear`` weight of shape ``(out, in)`` it is one row
per output neuron, i.e. the paper's CSR. The stream runs on across row
boundaries, so no row pointers are needed (nor counted). For CSC (EIE's layout, one column per input activation)
encode ``weight.T``. Under the usual model of pruning as independent
Bernoulli(density) draws the order does not change the expected size.
"""
from .huffman import canonical_code, code_lengths, entropy_bits, huffman_code, huffman_decode, huffman_encode, \
    mean_code_length
from .sparse import expected_fillers_per_nonzero, pack_bits, relative_index_decode, relative_index_encode, unpack_bits

__all__ = [
    "huffman_code", "huffman_encode", "huffman_decode", "code_lengths", "canonical_code",
    "entropy_bits", "mean_code_length", "relative_index_encode", "relative_index_decode",
    "expected_fillers_per_nonzero", "pack_bits", "unpack_bits",
]
