"""Does llama.cpp with the GGUF adapter predict what PEFT in transformers predicts?

Teacher-forced over fixed token sequences: at every position, the next-token distribution
of (a) transformers, the base model with the PEFT adapter, and (b) llama.cpp, the base GGUF
with the GGUF adapter, from the same prefix. Reported per position pair:

- **top-1 agreement**: the share of positions where both rank the same token first;
- **KL(llama.cpp || transformers)** over llama.cpp's top-k tokens plus one bucket for the
  rest of the vocabulary (llama.cpp reports only its top-k log-probabilities). Merging
  tokens into a bucket can only lower a KL divergence, so this is a lower bound of the full
  one; with k = 20 the bucket holds little mass.

The two sides need not run the same weights: training runs on transformers' dequantised
copy of a quantised GGUF, and llama.cpp runs the quantised file itself, so part of any gap
is quantisation of activations inside llama.cpp's matrix products, not the adapter. The
check is run with and without the adapter, so the adapter's own share can be read off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOP_K = 20


@dataclass
class Agreement:
    positions: int
    top1_agreement: float
    kl_mean: float  # nats, lower bound (see the module doc)
    kl_max: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "positions": self.positions,
            "top1_agreement": round(self.top1_agreement, 4),
            "kl_mean": round(self.kl_mean, 5),
            "kl_max": round(self.kl_max, 4),
        }


def transformers_logprobs(model: Any, sequences: Sequence[Sequence[int]]) -> list[Any]:
    """Per sequence, the log-softmax of the next-token logits at every position but the
    last (a [len - 1, vocab] float64 tensor): the prediction after each prefix."""
    import torch

    out = []
    with torch.no_grad():
        for tokens in sequences:
            ids = torch.tensor([list(tokens)])
            logits = model(input_ids=ids).logits[0, :-1].double()
            out.append(torch.log_softmax(logits, dim=-1))
    return out


def llama_top_logprobs(
    gguf_path: Path, adapter: Path | None, sequences: Sequence[Sequence[int]], k: int = TOP_K
) -> list[list[dict[int, float]]]:
    """Per sequence and position, llama.cpp's top-``k`` next-token log-probabilities (before
    any sampling), from one prefix request per position; the prompt cache makes each one
    cost a single new token."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path)
    params.n_parallel = 1
    params.n_ctx = max(len(s) for s in sequences) + 16
    params.warmup = False
    params.verbosity = 0
    if adapter is not None:
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(adapter), 1.0)]
    server = xllamacpp.Server(params)
    results = []
    for tokens in sequences:
        positions = []
        for end in range(1, len(tokens)):
            response = server.handle_completions({
                "prompt": list(tokens[:end]), "n_predict": 1, "n_probs": k,
                "temperature": 0, "cache_prompt": True, "post_sampling_probs": False,
            })  # fmt: skip
            if "error" in response:
                raise RuntimeError(f"llama.cpp: {response['error']}")
            top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            positions.append({int(t["id"]): float(t["logprob"]) for t in top})
        results.append(positions)
    return results


def compare(reference: list[Any], llama: list[list[dict[int, float]]]) -> Agreement:
    """Top-1 agreement and bucketed KL between the two sides' predictions."""
    agree, kls = 0, []
    for ref_seq, llama_seq in zip(reference, llama, strict=True):
        for ref, top in zip(ref_seq, llama_seq, strict=True):
            llama_first = max(top, key=top.__getitem__)
            agree += int(int(ref.argmax()) == llama_first)
            p = {t: math.exp(lp) for t, lp in top.items()}
            q = {t: math.exp(float(ref[t])) for t in top}
            p_rest, q_rest = max(0.0, 1 - sum(p.values())), max(1e-12, 1 - sum(q.values()))
            kl = sum(pt * (math.log(pt) - math.log(max(q[t], 1e-30))) for t, pt in p.items())
            if p_rest > 0:
                kl += p_rest * (math.log(p_rest) - math.log(q_rest))
            kls.append(max(0.0, kl))
    n = len(kls)
    return Agreement(n, agree / n if n else 0.0, sum(kls) / n if n else 0.0, max(kls, default=0.0))
