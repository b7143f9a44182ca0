"""A small decoder-only transformer and the cost formulas of real ones.

Taught in chapter 18. :class:`TinyGPT` is a GPT-2-style language model
(Radford et al. 2019) at laptop scale: pre-LayerNorm blocks, causal
multi-head self-attention with learned positions, a GELU MLP and an output
head tied to the token embedding, over bytes (``vocab`` 128: the book's text
is ASCII). Its ``forward(idx, cache=None)`` also takes and returns a
key/value cache, so that generating one token reuses the keys and values of
the tokens before it instead of recomputing them.

:class:`TransformerSpec` holds a decoder's shape — layers, widths, heads
(``n_kv_head < n_head`` is grouped-query attention, Ainslie et al. 2023),
vocabulary, context, MLP kind (GELU or SwiGLU, Shazeer 2020), norm kind and
bytes per value — and counts from it, with no weights:

- parameters (:meth:`TransformerSpec.params`), exactly what torch counts on
  :class:`TinyGPT` built from the same spec;
- FLOPs per token (a multiply-add = 2 FLOPs) for **decode** at context ``t``,
  ``2·N_mm + 4·n_layer·t·d_attn`` (every weight of a matmul used once, plus
  q·kᵀ and p·v over ``t`` cached positions), and for **prefill** of ``t``
  tokens, where token ``i`` attends to ``i`` positions (Kaplan et al. 2020,
  Table 1, count the same terms);
- KV-cache bytes per token, ``2·n_layer·n_kv_head·head_dim·bytes`` (a key
  and a value per layer and KV head).

:data:`PUBLISHED` has GPT-2 small/medium/large/XL and Llama-2-7B/13B/70B from
their released configuration files, each with its source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .validation import (Bool, Instance, Interval, Options, PositiveInt, Tensor, Text, check_fields,
                         check_part, validate_params)

MLPS = ("gelu", "swiglu")
NORMS = ("layernorm", "rmsnorm")


@dataclass(frozen=True)
class TransformerSpec:
    """The shape of a decoder-only transformer, and what it costs per token.

    ``d_model`` = ``n_head · head_dim``; ``n_kv_head`` divides ``n_head``
    (equal: multi-head attention; fewer: grouped-query attention).
    ``mlp="gelu"`` is GPT-2's two-matrix MLP, ``"swiglu"`` Llama's three.
    ``norm="layernorm"`` has a weight and a bias, ``"rmsnorm"`` a weight only;
    ``bias`` puts biases on every linear layer (GPT-2) or none (Llama);
    ``learned_positions`` adds a ``context × d_model`` table (GPT-2; Llama
    uses rotary positions, which have no parameters); ``tied`` shares the
    output head with the token embedding. ``bytes_per_value`` is the storage
    of a weight or a cached key/value (2 for fp16/bf16).

    >>> gpt2 = PUBLISHED["gpt2"]
    >>> gpt2.params(), gpt2.kv_bytes_per_token()
    (124439808, 36864)

    Behind chapter 18, "Where the time goes in a transformer".
    """

    name: str
    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    d_ff: int
    vocab: int
    context: int
    mlp: str = "gelu"
    norm: str = "layernorm"
    bias: bool = True
    learned_positions: bool = True
    tied: bool = True
    bytes_per_value: int = 2
    source: str = ""

    def __post_init__(self):
        check_fields(self, name=Text(), n_layer=PositiveInt(), d_model=PositiveInt(), n_head=PositiveInt(),
                     n_kv_head=PositiveInt(), d_ff=PositiveInt(), vocab=PositiveInt(), context=PositiveInt(),
                     mlp=Options(MLPS), norm=Options(NORMS), bias=Bool(), learned_positions=Bool(), tied=Bool(),
                     bytes_per_value=PositiveInt(), source=Text())
        if self.d_model % self.n_head:
            raise ValueError(f"TransformerSpec: d_model must be a multiple of n_head ({self.n_head}); "
                             f"got {self.d_model!r}.")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"TransformerSpec: n_kv_head must divide n_head ({self.n_head}); "
                             f"got {self.n_kv_head!r}.")

    # ------------------------------------------------------------ shapes
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def kv_dim(self) -> int:
        """Width of the keys (= of the values): ``n_kv_head · head_dim``."""
        return self.n_kv_head * self.head_dim

    # ------------------------------------------------------------ parameters
    def layer_params(self) -> dict[str, int]:
        """Parameters of one block, by part (attention, MLP, the two norms)."""
        d, kv, ff, b = self.d_model, self.kv_dim, self.d_ff, int(self.bias)
        attention = d * d + 2 * d * kv + d * d + b * (d + 2 * kv + d)       # q, k, v, output projection
        n_mats = 3 if self.mlp == "swiglu" else 2                            # gate, up, down | up, down
        mlp = n_mats * d * ff + b * ((n_mats - 1) * ff + d)
        return {"attention": attention, "mlp": mlp, "norms": 2 * self._norm_params()}

    def _norm_params(self) -> int:
        return 2 * self.d_model if self.norm == "layernorm" else self.d_model

    def params(self) -> int:
        """Every parameter: embeddings, blocks, final norm and (if untied) the output head."""
        d = self.d_model
        embed = self.vocab * d + (self.context * d if self.learned_positions else 0)
        head = 0 if self.tied else self.vocab * d
        return embed + self.n_layer * sum(self.layer_params().values()) + self._norm_params() + head

    def matmul_params(self) -> int:
        """Weights that take part in a matrix multiply per token: every block's matrices and the output head.

        The embedding lookups read one row each and do no arithmetic; the
        output head multiplies by all ``vocab × d_model`` of its weights
        whether or not it is tied to the embedding.
        """
        d, kv, ff = self.d_model, self.kv_dim, self.d_ff
        per_layer = 2 * d * d + 2 * d * kv + (3 if self.mlp == "swiglu" else 2) * d * ff
        return self.n_layer * per_layer + self.vocab * d

    # ------------------------------------------------------------ FLOPs
    def decode_flops(self, t: int) -> int:
        """FLOPs to produce one token with a KV cache of ``t`` positions (the new one included).

        ``2·N_mm`` for the weights, ``4·n_layer·t·d_model`` for q·kᵀ and p·v.
        """
        t = check_part("TransformerSpec.decode_flops", PositiveInt(), "t", t)
        return 2 * self.matmul_params() + 4 * self.n_layer * t * self.d_model

    def prefill_flops(self, t: int, *, causal: bool = True) -> int:
        """FLOPs to process a prompt of ``t`` tokens at once (no cache before it).

        Causal: token ``i`` attends to ``i`` positions, ``Σ i = t(t+1)/2``; with
        ``causal=False`` every token attends to all ``t`` (what a dense
        attention kernel computes before masking).
        """
        t = check_part("TransformerSpec.prefill_flops", PositiveInt(), "t", t)
        pairs = t * (t + 1) // 2 if causal else t * t
        return 2 * self.matmul_params() * t + 4 * self.n_layer * pairs * self.d_model

    # ------------------------------------------------------------ bytes
    def kv_bytes_per_token(self) -> int:
        """Bytes one token adds to the KV cache: ``2·n_layer·n_kv_head·head_dim·bytes_per_value``."""
        return 2 * self.n_layer * self.n_kv_head * self.head_dim * self.bytes_per_value

    def weight_bytes(self) -> int:
        """Bytes of all parameters at ``bytes_per_value`` each."""
        return self.params() * self.bytes_per_value

    def step_cost(self, phase: str, t: int, batch_size: int = 1) -> dict:
        """FLOPs and off-chip bytes of one forward step, and their ratio (FLOPs per byte).

        ``phase="decode"``: ``batch_size`` sequences each add one token at
        context ``t``; ``"prefill"``: ``batch_size`` prompts of ``t`` tokens.
        Bytes: the matmul weights read once per step (shared by the batch)
        plus, per sequence, the KV cache read (decode: ``t − 1`` cached
        positions) and written (the new positions). Activations are assumed
        to stay on chip.
        """
        check_part("TransformerSpec.step_cost", Options(("prefill", "decode")), "phase", phase)
        t = check_part("TransformerSpec.step_cost", PositiveInt(), "t", t)
        batch_size = check_part("TransformerSpec.step_cost", PositiveInt(), "batch_size", batch_size)
        weights = self.matmul_params() * self.bytes_per_value
        kv = self.kv_bytes_per_token()
        if phase == "decode":
            flops = batch_size * self.decode_flops(t)
            moved = weights + batch_size * t * kv                 # read t − 1 cached, write 1 new
        else:
            flops = batch_size * self.prefill_flops(t)
            moved = weights + batch_size * t * kv                 # write t new
        return {"flops": flops, "bytes": moved, "intensity": flops / moved}


def _spec(name, n_layer, d_model, n_head, d_ff, vocab, context, source, *, n_kv_head=None, llama=False):
    extra = dict(mlp="swiglu", norm="rmsnorm", bias=False, learned_positions=False, tied=False) if llama else {}
    return TransformerSpec(name, n_layer, d_model, n_head, n_kv_head or n_head, d_ff, vocab, context,
                           source=source, **extra)


_GPT2 = ("Radford et al. 2019, released config.json of Hugging Face openai-community/{} "
         "(n_layer, n_embd, n_head, n_ctx 1024, vocab_size 50257; MLP 4·n_embd)")
_LLAMA = ("Touvron et al. 2023 (Llama 2), Table 1 and config.json of meta-llama/{} "
          "(num_hidden_layers, hidden_size, num_attention_heads, num_key_value_heads, intermediate_size, "
          "vocab_size 32000, max_position_embeddings 4096)")
# Published configurations (bytes_per_value 2: fp16/bf16 weights and KV cache, as released)
PUBLISHED: dict[str, TransformerSpec] = {
    "gpt2": _spec("GPT-2 small", 12, 768, 12, 3072, 50257, 1024, _GPT2.format("gpt2")),
    "gpt2-medium": _spec("GPT-2 medium", 24, 1024, 16, 4096, 50257, 1024, _GPT2.format("gpt2-medium")),
    "gpt2-large": _spec("GPT-2 large", 36, 1280, 20, 5120, 50257, 1024, _GPT2.format("gpt2-large")),
    "gpt2-xl": _spec("GPT-2 XL", 48, 1600, 25, 6400, 50257, 1024, _GPT2.format("gpt2-xl")),
    "llama-2-7b": _spec("Llama-2-7B", 32, 4096, 32, 11008, 32000, 4096, _LLAMA.format("Llama-2-7b-hf"),
                        llama=True),
    "llama-2-13b": _spec("Llama-2-13B", 40, 5120, 40, 13824, 32000, 4096, _LLAMA.format("Llama-2-13b-hf"),
                         llama=True),
    "llama-2-70b": _spec("Llama-2-70B", 80, 8192, 64, 28672, 32000, 4096, _LLAMA.format("Llama-2-70b-hf"),
                         n_kv_head=8, llama=True),
}

# The book's language model and its draft (bytes; fp32 on the CPU)
LM_SPEC = TransformerSpec("TinyGPT", n_layer=4, d_model=160, n_head=5, n_kv_head=5, d_ff=640, vocab=128,
                          context=256, bytes_per_value=4, source="this book (effdl precompute lm)")
DRAFT_SPEC = TransformerSpec("TinyGPT draft", n_layer=2, d_model=64, n_head=2, n_kv_head=2, d_ff=256, vocab=128,
                             context=256, bytes_per_value=4, source="this book (effdl precompute lm)")
SPEC = Instance(TransformerSpec, "a TransformerSpec")


@validate_params(name=Options(tuple(PUBLISHED) + ("lm", "draft")))
def get_spec(name: str) -> TransformerSpec:
    """A published configuration (``"gpt2"``, …, ``"llama-2-70b"``) or the book's ``"lm"`` / ``"draft"``.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    return {"lm": LM_SPEC, "draft": DRAFT_SPEC}.get(name) or PUBLISHED[name]


@validate_params(names=Instance((list, tuple), "a list of spec names", optional=True), context=PositiveInt(),
                 batch_size=PositiveInt())
def spec_table(names=None, *, context: int = 4096, batch_size: int = 1) -> list[dict]:
    """One row per configuration: parameters, weight bytes, KV bytes per token and for ``context`` tokens.

    ``kv_cache_bytes`` is the cache of ``batch_size`` sequences of ``context``
    tokens (capped at each model's own context).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    rows = []
    for name in (list(PUBLISHED) if names is None else names):
        s = get_spec(name)
        t = min(context, s.context)
        rows.append({"model": s.name, "params": s.params(), "weight_bytes": s.weight_bytes(),
                     "n_kv_head": s.n_kv_head, "kv_bytes_per_token": s.kv_bytes_per_token(), "context": t,
                     "kv_cache_bytes": batch_size * t * s.kv_bytes_per_token(),
                     "decode_flops": s.decode_flops(t)})
    return rows


# ---------------------------------------------------------------- the model
class _Attention(nn.Module):
    def __init__(self, spec: TransformerSpec):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = spec.n_head, spec.n_kv_head, spec.head_dim
        self.q = nn.Linear(spec.d_model, spec.d_model, bias=spec.bias)
        self.k = nn.Linear(spec.d_model, spec.kv_dim, bias=spec.bias)
        self.v = nn.Linear(spec.d_model, spec.kv_dim, bias=spec.bias)
        self.out = nn.Linear(spec.d_model, spec.d_model, bias=spec.bias)

    def forward(self, x, past):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2)       # (b, heads, t, hd)
        k = self.k(x).view(b, t, self.n_kv_head, self.head_dim).transpose(1, 2)    # (b, kv heads, t, hd)
        v = self.v(x).view(b, t, self.n_kv_head, self.head_dim).transpose(1, 2)
        if past is not None:                                   # append to the cached keys and values
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        present = (k, v)
        if self.n_kv_head != self.n_head:                      # grouped-query: each KV head serves a group
            rep = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        total = k.shape[2]
        if t == 1:                                             # one new query sees every cached position
            y = F.scaled_dot_product_attention(q, k, v)
        elif total == t:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:                                                  # t new queries after total − t cached ones
            keep = torch.ones(t, total, dtype=torch.bool, device=x.device).tril(total - t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.out(y.transpose(1, 2).reshape(b, t, -1)), present


class _Block(nn.Module):
    def __init__(self, spec: TransformerSpec):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(spec.d_model), nn.LayerNorm(spec.d_model)
        self.attn = _Attention(spec)
        self.mlp = nn.Sequential(nn.Linear(spec.d_model, spec.d_ff, bias=spec.bias), nn.GELU(),
                                 nn.Linear(spec.d_ff, spec.d_model, bias=spec.bias))

    def forward(self, x, past):
        a, present = self.attn(self.ln1(x), past)     # pre-LN: normalise, attend, add back
        x = x + a
        return x + self.mlp(self.ln2(x)), present


class TinyGPT(nn.Module):
    """A byte-level, pre-LN, decoder-only transformer built from a :class:`TransformerSpec`.

    ``forward(idx, cache=None)`` takes token ids ``idx`` of shape (batch, t)
    and returns ``(logits, cache)``: logits (batch, t, vocab) and the new
    cache, a list with one ``(keys, values)`` pair per layer, each of shape
    (batch, n_kv_head, positions so far, head_dim). Passing that cache back
    with the next tokens continues the sequence without recomputing it.
    Only GELU MLPs, LayerNorm and learned positions are built (GPT-2's
    recipe); the spec must say so.

    Behind chapter 18, "Where the time goes in a transformer".
    """

    def __init__(self, spec: TransformerSpec = LM_SPEC):
        super().__init__()
        check_part("TinyGPT", SPEC, "spec", spec)
        if spec.mlp != "gelu" or spec.norm != "layernorm" or not spec.learned_positions or not spec.tied:
            raise ValueError(f"TinyGPT: spec must have mlp='gelu', norm='layernorm', learned_positions and tied "
                             f"embeddings; got {spec!r}.")
        self.spec = spec
        self.wte = nn.Embedding(spec.vocab, spec.d_model)
        self.wpe = nn.Embedding(spec.context, spec.d_model)
        self.blocks = nn.ModuleList(_Block(spec) for _ in range(spec.n_layer))
        self.ln_f = nn.LayerNorm(spec.d_model)
        self.apply(self._init)
        for name, p in self.named_parameters():        # GPT-2: residual projections scaled by 1/√(2·n_layer)
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * spec.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, cache: list | None = None):
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"TinyGPT.forward: idx must be a non-empty (batch, t) tensor of int64 token ids; "
                             f"got {getattr(idx, 'shape', idx)!r}.")
        start = 0 if cache is None else cache[0][0].shape[2]
        t = idx.shape[1]
        if start + t > self.spec.context:
            raise ValueError(f"TinyGPT.forward: positions must stay within the context "
                             f"({self.spec.context}); got {start + t}.")
        pos = torch.arange(start, start + t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)                      # (b, t, d)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, None if cache is None else cache[i])
            new_cache.append(present)
        logits = self.ln_f(x) @ self.wte.weight.T             # tied head: (b, t, vocab)
        return logits, new_cache


@validate_params(model=Instance(nn.Module, "a torch.nn.Module"))
def count_params(model: nn.Module) -> int:
    """Parameters torch counts on ``model`` (shared tensors once).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    return sum(p.numel() for p in model.parameters())


@validate_params(text=Text(), vocab=Interval(int, 2, 256))
def encode(text: str, vocab: int = 128) -> torch.Tensor:
    """The bytes of ``text`` as a 1-D int64 tensor (every byte must be below ``vocab``).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    data = text.encode("ascii", errors="replace") if vocab <= 128 else text.encode("latin-1", errors="replace")
    ids = torch.frombuffer(bytearray(data), dtype=torch.uint8).long() if data else torch.zeros(0, dtype=torch.long)
    if ids.numel() and int(ids.max()) >= vocab:
        raise ValueError(f"encode: text must hold only bytes below vocab ({vocab}); got byte {int(ids.max())}.")
    return ids


@validate_params(ids=Tensor(dtype="int", nonempty=False))
def decode_bytes(ids) -> str:
    """Token ids (bytes) back to text.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    return bytes(int(i) for i in ids.reshape(-1).tolist()).decode("latin-1")
