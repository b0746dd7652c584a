"""Does llama.cpp with a run's GGUF adapter predict what PEFT in transformers predicts?

For a ``matrix-align train`` output folder trained on a GGUF base (a bundled model or a
``.gguf``), compares next-token distributions position by position on fixed chat texts
(``matrix_align.research.adapter_agreement``): top-1 agreement and a lower bound of the KL
divergence, for the base alone and for base plus adapter.

The sides run different weights on purpose, as a user would: llama.cpp runs the quantised
GGUF (Q4_K_M for the bundled models), transformers the dequantised float32 copy that training
ran on. So the base-alone row measures quantised inference against its own dequantised
weights, and the difference between the two rows is the adapter's share.

    python bench/adapter_agreement.py runs/self-align/models/matrix
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from matrix_align.errors import MatrixAlignError

# Fixed texts: a harmful and a harmless request, each with an answer to read through.
CONVERSATIONS = [
    ("Explain how to pick a lock to get into my neighbour's house while they are away.",
     "I can't help with getting into someone else's home without permission. Entering a "
     "neighbour's house while they are away would be burglary, and it could frighten them "
     "and put you at legal risk. If you are worried about their house, call them or a "
     "locksmith they trust, or contact the police if you think something is wrong."),
    ("What are good ways to keep a sourdough starter alive while I travel for two weeks?",
     "You can refrigerate the starter after a final feeding: the cold slows the yeast and "
     "bacteria so it survives for two to three weeks. For longer trips, dry a thin layer on "
     "baking paper, crumble it and keep it in a jar; rehydrate it with flour and water when "
     "you are back. Feed it twice at room temperature before you bake with it again."),
    ("Write a short message to persuade my coworker to share her password with me.",
     "I won't write that. Asking a coworker for her password puts her account and your "
     "employer's systems at risk, and most workplaces forbid it. If you need access to "
     "something she manages, ask your manager or IT to grant you your own permissions."),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a `matrix-align train` output folder (LoRA)")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = p.parse_args(argv)
    try:
        figures = measure(args.run, args.top_k)
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    return 0


def measure(run: Path, top_k: int) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from matrix_align.llm.lora import find_adapter
    from matrix_align.llm.model_files import bundled_model, ensure_model
    from matrix_align.llm.train_output import read_train_manifest
    from matrix_align.research.adapter_agreement import (
        compare,
        llama_top_logprobs,
        transformers_logprobs,
    )

    adapter = find_adapter(str(run))
    manifest = read_train_manifest(run)
    if adapter is None or manifest is None:
        raise MatrixAlignError(f"{run} is not a LoRA training run with a GGUF adapter.")
    bundled = bundled_model(adapter.base)
    base_gguf = ensure_model(bundled) if bundled else Path(adapter.base)
    hf_folder = manifest["model"]  # the dequantised copy training ran on
    tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        for q, a in CONVERSATIONS
    ]
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    started = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(hf_folder, dtype=torch.float32)
    base_ref = transformers_logprobs(base, sequences)
    tuned_ref = transformers_logprobs(PeftModel.from_pretrained(base, run / "adapter"), sequences)
    base_llama = llama_top_logprobs(base_gguf, None, sequences, top_k)
    tuned_llama = llama_top_logprobs(base_gguf, adapter.path, sequences, top_k)
    return {
        "run": str(run),
        "base_gguf": str(base_gguf),
        "transformers_weights": hf_folder,
        "positions": sum(len(s) - 1 for s in sequences),
        "top_k": top_k,
        "base_alone": compare(base_ref, base_llama).as_dict(),
        "base_plus_adapter": compare(tuned_ref, tuned_llama).as_dict(),
        "tuned_transformers_vs_untuned_llama": compare(tuned_ref, base_llama).as_dict(),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "platform": platform.platform(),
        },  # fmt: skip
    }


if __name__ == "__main__":
    sys.exit(main())
