"""TensorBLEU: BLEU on token ids for a whole batch at once, with no Python loop over sentences.

Counting. For each order n, every n-gram of every sentence gets an integer key: its (n-1)-gram prefix's
id in the previous order's dictionary times the vocabulary size, plus its last token; unigram keys hold the
sentence index instead of a prefix, so equal n-grams of different sentences never share a key.
`torch.unique` turns the keys of the batch (candidates and references together) into a compact dictionary
whose size is the number of distinct n-grams present, not vocab**n; `bincount` over it counts each n-gram
in the candidate and in the reference, the clipped match count is their minimum, and `index_add_` sums it
back per sentence. An n-gram can only match if its prefix occurs on both sides, so n-grams whose prefix
does not are left out of the next orders' dictionaries (fewer keys to sort; same counts). Building keys
from prefix ids, rather than unfolding windows of n tokens and calling `torch.unique(dim=0)` on them, keeps
every `unique` one-dimensional (a plain sort) and the keys inside int64 for any vocabulary.

Scoring follows sacreBLEU 2.x exactly (checked to 1e-6 in the tests against `sacrebleu.sentence_bleu` with
`tokenize="none"` on ids written as words):
- brevity penalty: 1 if c >= r, exp(1 - r/c) if 0 < c < r, 0 if c = 0;
- no matched unigram at all: BLEU = 0 whatever the smoothing;
- orders are visited 1..N and the visit stops at the first order with no candidate n-gram (the candidate is
  shorter than n); with effective order only the visited orders are averaged, without it the missing
  orders count as precision 0 (BLEU = 0);
- smoothing of an order with 0 matches: `none` and `add-k` keep precision 0 (BLEU = 0), `floor` uses
  k/total (k = 0.1), `exp` uses 1/(2^z * total) where z counts the zero-match orders so far;
  `add-k` adds k (= 1) to matches and totals of every order n >= 2 before anything else.

A sequence ends at its first `pad_id` (right padding); the other ids must be >= 0 (`pad_id` may be negative).
"""

from __future__ import annotations

import torch

SMOOTHING_METHODS = ("none", "floor", "add-k", "exp")
DEFAULT_SMOOTH_VALUE = {"none": 0.0, "floor": 0.1, "add-k": 1.0, "exp": 0.0}


def tensor_bleu(
    candidates: torch.Tensor,
    references: torch.Tensor,
    *,
    pad_id: int = 0,
    max_n: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = True,
) -> torch.Tensor:
    """Sentence BLEU in [0, 1] of each candidate row against the same reference row.

    candidates: [B, Tc], references: [B, Tr] integer ids right-padded with `pad_id`. Returns [B] float32.
    Defaults match `sacrebleu.sentence_bleu` (exp smoothing, effective order).
    """
    matches, totals, cand_len, ref_len = ngram_statistics(candidates, references, pad_id=pad_id, max_n=max_n)
    score = bleu_from_statistics(
        matches, totals, cand_len, ref_len,
        smoothing=smoothing, smooth_value=smooth_value, effective_order=effective_order,
    )
    return score.to(torch.float32)


def tensor_corpus_bleu(
    candidates: torch.Tensor,
    references: torch.Tensor,
    *,
    pad_id: int = 0,
    max_n: int = 4,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = False,
) -> torch.Tensor:
    """Corpus BLEU in [0, 1] (a 0-d float32 tensor): n-gram counts and lengths summed over the batch first.

    Defaults match `sacrebleu.corpus_bleu` (exp smoothing, no effective order).
    """
    matches, totals, cand_len, ref_len = ngram_statistics(candidates, references, pad_id=pad_id, max_n=max_n)
    score = bleu_from_statistics(
        matches.sum(0, keepdim=True), totals.sum(0, keepdim=True),
        cand_len.sum(0, keepdim=True), ref_len.sum(0, keepdim=True),
        smoothing=smoothing, smooth_value=smooth_value, effective_order=effective_order,
    )
    return score[0].to(torch.float32)


def sequence_lengths(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Index of each row's first `pad_id` (or its width when there is none). [B, T] -> [B] int64."""
    is_pad = ids == pad_id
    width = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long, device=ids.device)
    if ids.shape[1] == 0:
        return width
    first = is_pad.to(torch.uint8).argmax(dim=1)
    return torch.where(is_pad.any(dim=1), first, width)


def ngram_statistics(
    candidates: torch.Tensor, references: torch.Tensor, *, pad_id: int = 0, max_n: int = 4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped matches [B, N], candidate n-gram totals [B, N], candidate lengths [B], reference lengths [B]."""
    if candidates.dim() != 2 or references.dim() != 2 or candidates.shape[0] != references.shape[0]:
        raise ValueError(
            f"expected [B, Tc] and [B, Tr] id tensors, got {tuple(candidates.shape)} and {tuple(references.shape)}"
        )
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    device = candidates.device
    cand = candidates.to(device=device, dtype=torch.long)
    ref = references.to(device=device, dtype=torch.long)
    batch = cand.shape[0]
    cand_len = sequence_lengths(cand, pad_id)
    ref_len = sequence_lengths(ref, pad_id)
    matches = torch.zeros(batch, max_n, dtype=torch.long, device=device)
    totals = (cand_len[:, None] - torch.arange(max_n, device=device)[None, :]).clamp(min=0)
    if batch == 0 or cand.numel() == 0 or ref.numel() == 0:
        return matches, totals, cand_len, ref_len

    # Pad positions may hold any id (they are masked out below); map them to 0 so they do not widen `vocab`.
    cand = torch.where(cand == pad_id, 0, cand)
    ref = torch.where(ref == pad_id, 0, ref)
    if min(int(cand.min()), int(ref.min())) < 0:
        raise ValueError("token ids must be >= 0")
    vocab = max(int(cand.max()), int(ref.max())) + 1
    # Largest key: (number of dictionary entries) * vocab + vocab; it must fit in int64.
    if (batch * (cand.shape[1] + ref.shape[1]) + batch + 2) * vocab >= 2**62:
        raise ValueError(f"batch too large for int64 n-gram keys (vocab {vocab})")

    rows = torch.arange(batch, device=device)[:, None]
    cand_pos = torch.arange(cand.shape[1], device=device)[None, :]
    ref_pos = torch.arange(ref.shape[1], device=device)[None, :]
    for n in range(1, max_n + 1):
        cand_width, ref_width = cand.shape[1] - n + 1, ref.shape[1] - n + 1
        if cand_width <= 0 or ref_width <= 0:
            break  # no n-gram of this order (nor of a higher one) on one side: no more matches
        if n == 1:
            cand_key, ref_key = rows * vocab + cand, rows * vocab + ref  # unigram keys hold the sentence index
            cand_live, ref_live = cand_pos < cand_len[:, None], ref_pos < ref_len[:, None]
        else:
            # n-gram at j = its (n-1)-gram at j (dictionary id) followed by the token at j+n-1. It can only
            # match if that prefix occurs on both sides, so the others are left out of the dictionary.
            prev_cand, prev_ref = cand_ids[:, :-1], ref_ids[:, :-1]
            cand_key = prev_cand * vocab + cand[:, n - 1:]  # [B, Tc-n+1]
            ref_key = prev_ref * vocab + ref[:, n - 1:]  # [B, Tr-n+1]
            cand_live = shared[prev_cand] & (cand_pos[:, :cand_width] < (cand_len - n + 1)[:, None])
            ref_live = shared[prev_ref] & (ref_pos[:, :ref_width] < (ref_len - n + 1)[:, None])
        cand_at = cand_live.reshape(-1).nonzero().squeeze(1)  # flat positions kept [Mc]
        ref_at = ref_live.reshape(-1).nonzero().squeeze(1)  # [Mr]
        if cand_at.numel() == 0 or ref_at.numel() == 0:
            break
        cand_sel, ref_sel = cand_key.reshape(-1)[cand_at], ref_key.reshape(-1)[ref_at]
        dictionary, inverse = torch.unique(torch.cat([cand_sel, ref_sel]), sorted=True, return_inverse=True)
        size = dictionary.numel()
        cand_inv, ref_inv = inverse[: cand_sel.numel()], inverse[cand_sel.numel():]
        clipped = torch.minimum(torch.bincount(cand_inv, minlength=size), torch.bincount(ref_inv, minlength=size))
        owner = dictionary // vocab if n == 1 else owner[dictionary // vocab - 1]  # sentence of each entry [U]
        matches[:, n - 1] = torch.zeros(batch, dtype=torch.long, device=device).index_add_(0, owner, clipped)

        # Dictionary ids per position for the next order: 1-based, 0 = left out; `shared` is indexed by them.
        shared = torch.cat([torch.zeros(1, dtype=torch.bool, device=device), clipped > 0])
        cand_ids = torch.zeros_like(cand_key).reshape(-1).index_copy_(0, cand_at, cand_inv + 1).view_as(cand_key)
        ref_ids = torch.zeros_like(ref_key).reshape(-1).index_copy_(0, ref_at, ref_inv + 1).view_as(ref_key)
    return matches, totals, cand_len, ref_len


def bleu_from_statistics(
    matches: torch.Tensor,
    totals: torch.Tensor,
    cand_len: torch.Tensor,
    ref_len: torch.Tensor,
    *,
    smoothing: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = True,
) -> torch.Tensor:
    """BLEU in [0, 1] from counts: matches, totals [G, N]; lengths [G]. Returns [G] float64."""
    if smoothing not in SMOOTHING_METHODS:
        raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHING_METHODS)}")
    k = DEFAULT_SMOOTH_VALUE[smoothing] if smooth_value is None else float(smooth_value)
    m = matches.to(torch.float64).clone()
    t = totals.to(torch.float64).clone()
    max_n = m.shape[1]
    any_match = matches.sum(dim=1) > 0  # checked on raw counts, before add-k

    if smoothing == "add-k":
        m[:, 1:] += k
        t[:, 1:] += k
    visited = torch.cumprod((t > 0).to(torch.long), dim=1).bool()  # orders reached before the first empty one
    zero = (m == 0) & visited
    safe_t = torch.where(visited, t, torch.ones_like(t))
    if smoothing == "exp":
        halvings = torch.cumsum(zero.to(torch.float64), dim=1)
        smoothed = 1.0 / (torch.pow(2.0, halvings) * safe_t)
    elif smoothing == "floor":
        smoothed = k / safe_t
    else:
        smoothed = torch.zeros_like(t)
    precision = torch.where(m > 0, m / safe_t, smoothed)
    precision = torch.where(visited, precision, torch.zeros_like(precision))

    if effective_order:
        order = visited.sum(dim=1)
    else:
        order = torch.full_like(cand_len, max_n)
    in_mean = torch.arange(max_n, device=m.device)[None, :] < order[:, None]
    log_p = torch.where(in_mean, torch.log(precision), torch.zeros_like(precision))  # log 0 = -inf -> BLEU 0
    geo_mean = torch.exp(log_p.sum(dim=1) / order.clamp(min=1).to(torch.float64))

    c = cand_len.to(torch.float64)
    r = ref_len.to(torch.float64)
    brevity = torch.where(c >= r, torch.ones_like(c), torch.exp(1.0 - r / c.clamp(min=1.0)))
    brevity = torch.where(c > 0, brevity, torch.zeros_like(c))
    return torch.where(any_match & (order > 0), brevity * geo_mean, torch.zeros_like(c))
