"""The γ-initialized post-LN transformer and its hooks (docs/science.md §3)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.config import ModelConfig, TaskConfig
from core.model import AnchorTransformer, HookPoint, init_std
from core.task import generate

torch.set_num_threads(1)

VOCAB, CTX = TaskConfig().vocab_size, TaskConfig().seq_len  # 110, 9


def tiny(n_heads=2, n_layers=2, seed=0, **kw):
    cfg = ModelConfig(n_layers=n_layers, d_model=8, d_ff=12, d_head=3, n_heads=n_heads, **kw)
    return AnchorTransformer(cfg, VOCAB, CTX, torch.Generator().manual_seed(seed))


def tokens(n=5, seed=0):
    return generate(TaskConfig(), n, "any", torch.Generator().manual_seed(seed)).tokens


# -- initialization: every weight ~ N(0, d_in^(-2γ)) ----------------------------------------------

def expected_fan_ins(cfg: ModelConfig, d_vocab: int) -> dict[str, int]:
    """Written out independently of the model (docs/science.md §3, the authors' conventions)."""
    emb = cfg.d_model if cfg.embed_fan_in == "d_model" else d_vocab
    out = {"W_E": emb, "W_pos": emb, "W_U": cfg.d_model}
    for i in range(cfg.n_layers):
        out |= {f"blocks.{i}.attn.W_Q": cfg.d_model, f"blocks.{i}.attn.W_K": cfg.d_model,
                f"blocks.{i}.attn.W_V": cfg.d_model, f"blocks.{i}.attn.W_O": cfg.n_heads * cfg.d_head,
                f"blocks.{i}.mlp.W_in": cfg.d_model, f"blocks.{i}.mlp.W_out": cfg.d_ff}
    return out


@pytest.fixture(scope="module", params=[(0.5, "d_model"), (0.8, "d_model"), (0.8, "vocab")],
                ids=["g0.5", "g0.8", "g0.8-vocab"])
def big(request):
    gamma, emb = request.param
    # d_attn = 3·128 = 384, d_ff = 512, d_model = 256, vocab 110: every fan-in differs, so a
    # weight initialised with the wrong one is caught.
    cfg = ModelConfig(n_layers=2, d_model=256, d_ff=512, d_head=128, n_heads=3, gamma=gamma, embed_fan_in=emb)
    return AnchorTransformer(cfg, VOCAB, CTX, torch.Generator().manual_seed(1))


def test_fan_ins_follow_the_authors_conventions(big):
    assert big.fan_ins() == expected_fan_ins(big.cfg, VOCAB)


def test_parameter_set_has_no_other_biases(big):
    names = {n for n, _ in big.named_parameters()}
    lns = {f"blocks.{i}.{ln}.{w}" for i in range(2) for ln in ("ln1", "ln2") for w in ("weight", "bias")}
    assert names == set(expected_fan_ins(big.cfg, VOCAB)) | lns | {"b_U"}


def test_every_weight_has_std_d_in_to_minus_gamma(big):
    params = dict(big.named_parameters())
    for name, d_in in expected_fan_ins(big.cfg, VOCAB).items():
        w = params[name].detach().double().flatten()
        want = d_in ** (-big.cfg.gamma)
        assert want == pytest.approx(init_std(d_in, big.cfg.gamma))
        tol = 4.0 / math.sqrt(2 * w.numel())  # 4 sigma of the sample std
        assert abs(w.std().item() / want - 1) < tol, (name, w.std().item(), want)
        assert abs(w.mean().item()) < 4 * want / math.sqrt(w.numel()), name
        # normal, not uniform: excess kurtosis near 0 (a uniform one has −1.2)
        z = (w - w.mean()) / w.std()
        assert abs((z ** 4).mean().item() - 3) < 0.5, name


def test_unembedding_bias_and_layernorms(big):
    bound = 1 / math.sqrt(big.cfg.d_model)
    b = big.b_U.detach()
    assert b.abs().max() <= bound
    assert b.abs().max() > 0.8 * bound and b.std() > 0.3 * bound  # drawn, not zero
    for block in big.blocks:
        for ln in (block.ln1, block.ln2):
            assert torch.equal(ln.weight, torch.ones_like(ln.weight))
            assert torch.equal(ln.bias, torch.zeros_like(ln.bias))


def test_init_is_seeded():
    a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    for (n, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), n
    assert not torch.equal(a.W_E, c.W_E)


def test_larger_gamma_means_smaller_weights():
    s = {g: tiny(gamma=g).W_E.std().item() for g in (0.3, 0.5, 0.8, 1.2)}
    assert s[0.3] > s[0.5] > s[0.8] > s[1.2]


# -- forward and the causal mask through hooks ---------------------------------------------------

def test_logits_shape_and_too_long_input():
    m = tiny()
    assert m(tokens(4)).shape == (4, CTX, VOCAB)
    assert m(tokens(4)[:, :5]).shape == (4, 5, VOCAB)
    with pytest.raises(ValueError, match="longer"):
        m(torch.zeros(1, CTX + 1, dtype=torch.long))


def test_causal_mask_pattern():
    m = tiny(n_heads=3)
    _, cache = m.run_with_cache(tokens(6), names_filter=lambda n: n.endswith("hook_pattern"))
    assert set(cache) == {"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}
    for pat in cache.values():
        assert pat.shape == (6, 3, CTX, CTX)
        upper = torch.triu(torch.ones(CTX, CTX, dtype=torch.bool), diagonal=1)
        assert (pat[..., upper] == 0).all()                 # exactly zero, not just small
        assert torch.allclose(pat.sum(-1), torch.ones(6, 3, CTX), atol=1e-6)
        assert (pat[..., ~upper] > 0).all()                 # nothing else masked
        assert torch.equal(pat[..., 0, 0], torch.ones(6, 3))  # first token sees only itself


def test_later_tokens_do_not_change_earlier_positions():
    m = tiny()
    t = tokens(3)
    t2 = t.clone()
    t2[:, -1] = 20 + (t[:, -1] - 19) % 80
    a, b = m(t), m(t2)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_cache_contents_and_shapes():
    m = tiny(n_heads=2)
    t = tokens(5)
    logits, cache = m.run_with_cache(t)
    assert set(cache) == set(m.hook_points())
    assert torch.equal(logits, cache["hook_logits"])
    assert torch.equal(logits, m(t))  # caching changes nothing
    B, T, d, h, dh = 5, CTX, 8, 2, 3
    for i in range(2):
        for k in ("q", "k", "v", "z"):
            assert cache[f"blocks.{i}.attn.hook_{k}"].shape == (B, T, h, dh)
        for k in ("resid_mid", "resid_post", "attn_out", "mlp_out"):
            assert cache[f"blocks.{i}.hook_{k}"].shape == (B, T, d)
        assert cache[f"blocks.{i}.attn.hook_attn_scores"].shape == (B, h, T, T)
        assert cache[f"blocks.{i}.mlp.hook_post"].shape == (B, T, 12)
    assert cache["hook_logits"].shape == (B, T, VOCAB)
    assert not any(v.requires_grad for v in cache.values())
    _, live = m.run_with_cache(t, names_filter="hook_logits", detach=False)
    assert live["hook_logits"].requires_grad


def test_cached_activations_follow_spec_formulas():
    """Recompute X_ao, X_do and the logits from the cache with the equations of docs/science.md §3 (post-LN)."""
    m = tiny(n_heads=2)
    t = tokens(4)
    logits, c = m.run_with_cache(t)
    x = m.W_E[t] + m.W_pos[:CTX]
    assert torch.allclose(x, c["hook_embed"] + c["hook_pos_embed"])
    for i, blk in enumerate(m.blocks):
        p = f"blocks.{i}."
        q, k, v = (torch.einsum("bpd,hde->bphe", x, w) for w in (blk.attn.W_Q, blk.attn.W_K, blk.attn.W_V))
        assert torch.allclose(q, c[p + "attn.hook_q"], atol=1e-6)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(3)
        causal = torch.tril(torch.ones(CTX, CTX, dtype=torch.bool))
        pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        assert torch.allclose(pattern, c[p + "attn.hook_pattern"], atol=1e-6)
        attn = torch.einsum("bhqk,bkhe->bqhe", pattern, v).reshape(4, CTX, 6) @ m.weight(f"W_O.{i}")
        x_ao = F.layer_norm(x + attn, (8,))
        assert torch.allclose(x_ao, c[p + "hook_resid_mid"], atol=1e-5)
        ffn = F.relu(x_ao @ blk.mlp.W_in) @ blk.mlp.W_out
        x = F.layer_norm(ffn + x_ao, (8,))
        assert torch.allclose(x, c[p + "hook_resid_post"], atol=1e-5)
        # post-LN: every resid vector has mean 0 and unit variance
        assert torch.allclose(x.mean(-1), torch.zeros(4, CTX), atol=1e-5)
    assert torch.allclose(x @ m.W_U + m.b_U, logits, atol=1e-5)


def _n_hooks(m):
    return sum(len(hp._forward_hooks) for hp in m.modules() if isinstance(hp, HookPoint))


def test_hooks_removed_after_run_with_cache_and_after_errors():
    m = tiny()
    m.run_with_cache(tokens(2))
    assert _n_hooks(m) == 0
    with pytest.raises(ValueError):
        m.run_with_cache(torch.zeros(1, CTX + 2, dtype=torch.long))  # forward raises mid-run
    assert _n_hooks(m) == 0

    def boom(t, name):
        raise RuntimeError("inside a hook")

    with pytest.raises(RuntimeError, match="inside a hook"):
        with m.hooks([("blocks.0.hook_resid_mid", boom)]):
            assert _n_hooks(m) == 1
            m(tokens(2))
    assert _n_hooks(m) == 0
    with pytest.raises(KeyError, match="no hook point"):
        with m.hooks([("hook_logits", boom), ("blocks.9.hook_nope", boom)]):
            pass
    assert _n_hooks(m) == 0


def test_names_filter_forms():
    m = tiny()
    t = tokens(2)
    assert set(m.run_with_cache(t, names_filter="blocks.1.hook_resid_post")[1]) == {"blocks.1.hook_resid_post"}
    want = ["blocks.0.attn.hook_q", "hook_logits"]
    assert set(m.run_with_cache(t, names_filter=want)[1]) == set(want)
    got = m.run_with_cache(t, names_filter=lambda n: "resid_mid" in n)[1]
    assert set(got) == {"blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid"}
    assert m.run_with_cache(t, names_filter=[])[1] == {}


def test_hook_can_replace_an_activation():
    m = tiny()
    t = tokens(3)
    base = m(t)
    with m.hooks([("blocks.1.hook_resid_post", lambda x, name: torch.zeros_like(x))]):
        ablated = m(t)
    assert torch.allclose(ablated, m.b_U.expand_as(ablated))  # zero residual -> logits = bias
    assert torch.equal(m(t), base)


# -- weight() accessor ---------------------------------------------------------------------------

def test_weight_accessor_multi_head():
    m = tiny(n_heads=2)
    d, h, dh = 8, 2, 3
    x = torch.randn(4, CTX, d, generator=torch.Generator().manual_seed(0))
    for name in ("W_Q", "W_K", "W_V"):
        w = m.weight(f"{name}.1")
        assert w.shape == (d, h * dh)
        full = getattr(m.blocks[1].attn, name)
        for head in range(h):
            assert torch.equal(w[:, head * dh:(head + 1) * dh], full[head])
        assert torch.equal(w, m.weight(f"blocks.1.attn.{name}"))
        per_head = torch.einsum("bpd,hde->bphe", x, full).reshape(4, CTX, h * dh)
        assert torch.allclose(x @ w, per_head, atol=1e-6)
    wo = m.weight("W_O.0")
    assert wo.shape == (h * dh, d)
    assert torch.equal(wo[dh:], m.blocks[0].attn.W_O[1])
    assert m.weight("W_in.1").shape == (d, 12) and m.weight("W_out.0").shape == (12, d)
    assert m.weight("W_E").shape == (VOCAB, d) and m.weight("W_U").shape == (d, VOCAB)
    assert m.weight("W_pos").shape == (CTX, d)
    assert not m.weight("W_Q.0").requires_grad
    for bad in ("W_X.0", "W_Q.5", "blocks.0.attn.W_Z"):
        with pytest.raises(KeyError):
            m.weight(bad)
