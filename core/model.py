"""The γ-initialized, post-LayerNorm, decoder-only transformer of docs/science.md §3.

[INIT] §3.5 and appendix A::

    X(1)    = onehot(X) · W_E + W_pos                          hook_embed + hook_pos_embed
    Q,K,V   = X(l) W_Q(l), X(l) W_K(l), X(l) W_V(l)             attn.hook_q / hook_k / hook_v
    Attn(l) = softmax(Q Kᵀ / sqrt(d_head)), causal              attn.hook_pattern
    X_ao(l) = LN1( X(l) + Attn(l) V W_O(l) )                    blocks.l.hook_resid_mid
    X(l+1)  = LN2( FFN(X_ao(l)) + X_ao(l) )                     blocks.l.hook_resid_post
    logits  = X(L+1) W_U + b_U                                  hook_logits

Initialization (the authors' conventions, docs/science.md §3): every weight ~ N(0, std²) with
std = d_in^(-γ): W_E and W_pos use d_model (or the vocabulary with ``embed_fan_in="vocab"``),
W_Q/W_K/W_V use d_model, W_O uses n_heads·d_head, the FFN layers their own fan-in, W_U uses
d_model. Only the unembedding has a bias (PyTorch's default Linear bias init). LayerNorms keep
weight 1, bias 0. No other biases.

Weight names follow TransformerLens: ``W_E [d_vocab, d_model]``, ``W_pos [n_ctx, d_model]``,
``W_Q/W_K/W_V [n_heads, d_model, d_head]``, ``W_O [n_heads, d_head, d_model]``,
``W_in [d_model, d_ff]``, ``W_out [d_ff, d_model]``, ``W_U [d_model, d_vocab]``, ``b_U [d_vocab]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, RunConfig
from .hooks import HookedRootModule, HookPoint


def _full(x: torch.Tensor) -> torch.Tensor:
    """``x`` in fp32 if it came out of a bf16/fp16 autocast matmul, else unchanged (fp64 stays)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def embed(tokens: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    """``W_E[tokens]``: ``[batch, pos]`` int64 -> ``[batch, pos, d_model]``, with a gradient that
    is bit-identical at any CPU thread count.

    ``F.embedding`` rather than indexing: the backward of ``W_E[tokens]`` (``index_put_`` with
    accumulate) adds rows with atomic adds in thread order once a batch has more than 32,768
    gradient entries, so two runs with the same seed and 2 threads diverged after a few steps.
    The embedding backward gives the sum of the one-thread order at any thread count (and is
    faster); the forward is the same gather.
    """
    return F.embedding(tokens, W_E)


def init_std(d_in: int, gamma: float) -> float:
    """Standard deviation (1/d_in)^γ of a weight with ``d_in`` inputs ([INIT] §3.5)."""
    return float(d_in) ** (-gamma)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, n_ctx: int) -> None:
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        # built on the CPU even under a ``meta`` device context (core.runs checks shapes that way;
        # tril on meta would import torch._dynamo, seconds); ``model.to(device)`` moves it
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool, device="cpu")),
                             persistent=False)
        self.scale = 1.0 / math.sqrt(dh)
        self.hook_q = HookPoint()             # [batch, pos, head, d_head]
        self.hook_k = HookPoint()             # [batch, pos, head, d_head]
        self.hook_v = HookPoint()             # [batch, pos, head, d_head]
        self.hook_attn_scores = HookPoint()   # [batch, head, query_pos, key_pos], masked, pre-softmax
        self.hook_pattern = HookPoint()       # [batch, head, query_pos, key_pos], rows sum to 1
        self.hook_z = HookPoint()             # [batch, pos, head, d_head] = pattern · v

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, pos, d_model]
        T = x.shape[1]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q))
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K))
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V))
        scores = _full(torch.einsum("bqhe,bkhe->bhqk", q, k)) * self.scale
        scores = self.hook_attn_scores(scores.masked_fill(~self.mask[:T, :T], float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O)  # [batch, pos, d_model]

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Attention output at the last position only: ``[batch, pos, d_model] -> [batch, d_model]``.

        Exactly ``forward(x)[:, -1]``: the last query attends to every key, so no mask is
        needed; keys and values are still computed at every position. One fused matmul makes
        K and V (the weights are concatenated, an exact rewrite). Hooks do not fire. Scores
        and softmax run in fp32 even under bf16 autocast.
        """
        h, dh = self.W_Q.shape[0], self.W_Q.shape[2]
        q = torch.einsum("bd,hde->bhe", x[:, -1], self.W_Q)                       # [batch, head, d_head]
        kv = torch.einsum("bpd,hde->bphe", x, torch.cat([self.W_K, self.W_V], dim=2))
        k, v = kv[..., :dh], kv[..., dh:]                                          # [batch, pos, head, d_head]
        scores = _full(torch.einsum("bhe,bkhe->bhk", q, k)) * self.scale
        pattern = scores.softmax(dim=-1).to(v.dtype)                               # [batch, head, key_pos]
        z = torch.einsum("bhk,bkhe->bhe", pattern, v)
        return torch.einsum("bhe,hed->bd", z, self.W_O)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_ff))
        self.W_out = nn.Parameter(torch.empty(cfg.d_ff, cfg.d_model))
        self.hook_post = HookPoint()  # [batch, pos, d_ff] after ReLU: the FFN neurons

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_post(F.relu(x @ self.W_in)) @ self.W_out


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, n_ctx: int) -> None:
        super().__init__()
        self.attn = Attention(cfg, n_ctx)
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.hook_attn_out = HookPoint()    # [batch, pos, d_model] Attn V W_O
        self.hook_resid_mid = HookPoint()   # [batch, pos, d_model] X_ao(l), post-LN
        self.hook_mlp_out = HookPoint()     # [batch, pos, d_model] FFN(X_ao)
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model] X_do(l) = X(l+1), post-LN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_ao = self.hook_resid_mid(self.ln1(_full(x + self.hook_attn_out(self.attn(x)))))
        return self.hook_resid_post(self.ln2(_full(x_ao + self.hook_mlp_out(self.mlp(x_ao)))))

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output at the last position only: ``[batch, pos, d_model] -> [batch, d_model]``.

        Equals ``forward(x)[:, -1]``: after the attention, every operation of a post-LN block
        is position-wise, so only the last position is computed. Hooks do not fire.
        """
        x_ao = self.ln1(_full(x[:, -1] + self.attn.forward_last(x)))
        return self.ln2(_full(x_ao + self.mlp(x_ao)))


class AnchorTransformer(HookedRootModule):
    """Decoder-only post-LN transformer with γ-scaled initialization.

    Args:
        cfg: model config (width, depth, heads, γ).
        d_vocab: vocabulary size (``RunConfig.d_vocab``: the task's, or ``model.d_vocab``).
        n_ctx: number of positions (``cfg.n_ctx`` or the task's sequence length).
        generator: optional seeded ``torch.Generator`` for the initialization.

    ``forward(tokens [batch, pos] int64) -> logits [batch, pos, d_vocab]``. Training reads the
    last position only.
    """

    def __init__(self, cfg: ModelConfig, d_vocab: int, n_ctx: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg, self.d_vocab, self.n_ctx = cfg, d_vocab, n_ctx
        self.W_E = nn.Parameter(torch.empty(d_vocab, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(n_ctx, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg, n_ctx) for _ in range(cfg.n_layers))
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, d_vocab))
        self.b_U = nn.Parameter(torch.empty(d_vocab))
        self.hook_embed = HookPoint()      # [batch, pos, d_model] W_E[tokens]
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model] W_pos[:pos]
        self.hook_logits = HookPoint()     # [batch, pos, d_vocab]
        self.reset_parameters(generator)

    def fan_ins(self) -> dict[str, int]:
        """Parameter name -> the d_in whose (1/d_in)^γ sets its std (LayerNorms excluded)."""
        c = self.cfg
        emb = c.d_model if c.embed_fan_in == "d_model" else self.d_vocab
        out = {"W_E": emb, "W_pos": emb, "W_U": c.d_model}
        for i in range(c.n_layers):
            p = f"blocks.{i}."
            out.update({p + "attn.W_Q": c.d_model, p + "attn.W_K": c.d_model, p + "attn.W_V": c.d_model,
                        p + "attn.W_O": c.d_attn, p + "mlp.W_in": c.d_model, p + "mlp.W_out": c.d_ff})
        return out

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        params = dict(self.named_parameters())
        for name, d_in in self.fan_ins().items():
            params[name].normal_(0.0, init_std(d_in, self.cfg.gamma), generator=generator)
        # b_U: PyTorch's nn.Linear default, U(-1/sqrt(d_model), 1/sqrt(d_model)).
        bound = 1.0 / math.sqrt(self.cfg.d_model)
        self.b_U.uniform_(-bound, bound, generator=generator)
        for block in self.blocks:
            for ln in (block.ln1, block.ln2):
                ln.reset_parameters()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        if T > self.n_ctx:
            raise ValueError(f"sequence of {T} tokens is longer than the model's {self.n_ctx} positions")
        x = self.hook_embed(embed(tokens, self.W_E)) + self.hook_pos_embed(self.W_pos[:T])  # [batch, pos, d_model]
        for block in self.blocks:
            x = block(x)
        return self.hook_logits(x @ self.W_U + self.b_U)  # [batch, pos, d_vocab]

    def forward_last(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at the last position only: ``[batch, pos] int64 -> [batch, d_vocab]`` (fp32).

        The exact equivalent of ``forward(tokens)[:, -1]`` for training and evaluation, which
        read only the last position ([INIT] appendix A: the loss is taken at the last token).
        Every layer but the last runs in full; the last block computes keys and values at every
        position and everything else at the last one; the unembedding runs once. At the paper
        shape this is about 1.7× fewer FLOP than the full forward. No hook fires: probes and
        ``run_with_cache`` use ``forward``.

        Raises:
            ValueError: a sequence longer than the model's positions.
        """
        T = tokens.shape[1]
        if T > self.n_ctx:
            raise ValueError(f"sequence of {T} tokens is longer than the model's {self.n_ctx} positions")
        x = embed(tokens, self.W_E) + self.W_pos[:T]
        for block in self.blocks[:-1]:
            x = _full(block(x))
        x = self.blocks[-1].forward_last(x)  # [batch, d_model]
        return _full(x @ self.W_U + self.b_U)

    def weight(self, name: str) -> torch.Tensor:
        """A weight by TransformerLens-style name, e.g. ``"W_Q.0"`` or ``"blocks.0.attn.W_Q"``.

        Attention weights come back as 2-D matrices ``[d_in, d_out]`` with heads concatenated
        (``W_Q.l``: ``[d_model, n_heads·d_head]``, ``W_O.l``: ``[n_heads·d_head, d_model]``).

        Raises:
            KeyError: unknown name.
        """
        if "." in name and not name.startswith("blocks."):
            base, layer = name.rsplit(".", 1)
            sub = "mlp" if base in ("W_in", "W_out") else "attn"
            name = f"blocks.{layer}.{sub}.{base}"
        params = dict(self.named_parameters())
        if name not in params:
            raise KeyError(f"no weight named {name!r}")
        w = params[name].detach()
        if w.ndim == 3 and name.endswith("W_O"):
            return w.reshape(-1, w.shape[-1])
        if w.ndim == 3:
            return w.permute(1, 0, 2).reshape(w.shape[1], -1)
        return w


def build_model(cfg: RunConfig, generator: torch.Generator | None = None) -> AnchorTransformer:
    """The model of a run config: ``AnchorTransformer(cfg.model, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx)``
    (each the model's own setting, else the task's), initialized from ``generator`` (docs/science.md §3)."""
    return AnchorTransformer(cfg.model, cfg.d_vocab, cfg.n_ctx, generator)
