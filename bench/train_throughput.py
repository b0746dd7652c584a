"""LoRA SFT throughput: tokens per second, peak memory and model FLOPs utilisation (MFU).

What it measures: the paper's LoRA recipe (r=8, alpha=16, dropout 0.05, all linear layers)
on a model of the Qwen2.5-0.5B architecture with random weights (speed does not depend on
the weights, and no hub is needed), through TRL's SFTTrainer, the code path
``matrix-align train`` uses. Sequences are random token ids of exactly ``--seq-len`` tokens,
so every token is a real one (no padding) and tokens/s is unambiguous.

MFU = achieved model FLOP/s / the card's dense bf16 peak. Model FLOPs per token follow the
PaLM convention, 6N + 12·L·d·T (N = parameters in matrix multiplies, including the tied
lm_head; L layers, d hidden size, T sequence length), as if every weight were trained. LoRA
skips the weight gradients of the frozen base (about 2N per token), so the script also
prints a LoRA-aware figure with 4N + 12·L·d·T. Recomputation from activation checkpointing
is not counted (that would be hardware FLOPs utilisation).

Runs anywhere: on CPU it uses fp32 and reports no MFU (no meaningful peak); ``--preset tiny``
gives a quick smoke run. If TRL cannot be imported, ``--engine torch`` (a plain PyTorch loop
over the same PEFT model) is used instead and the output says so.

    python bench/train_throughput.py                      # GPU: bf16, batch 8 x 1024 tokens
    python bench/train_throughput.py --preset tiny --steps 3 --seq-len 128 --batch-size 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Qwen2.5-0.5B(-Instruct) / Qwen2.5-Coder-0.5B: the embedded model's architecture.
    "qwen2.5-0.5b": {
        "vocab_size": 151936,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "vocab_size": 151936,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
}

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets. The
# first name fragment found in torch.cuda.get_device_name() wins, so order matters.
BF16_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H200", 989.4),
    ("GH200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("A10G", 70.0),
    ("L4", 121.0),
    ("4090", 165.2),
]

LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}


def main() -> None:
    args = parse_args()
    import torch

    cuda = torch.cuda.is_available() and args.device != "cpu"
    device_name = (
        torch.cuda.get_device_name(0)
        if cuda
        else f"cpu ({platform.processor() or 'x86_64'}, {os.cpu_count()} threads)"
    )
    bf16 = cuda and args.precision != "fp32"
    dtype = torch.bfloat16 if bf16 else torch.float32

    model, flops = build_model(args, dtype, "cuda" if cuda else "cpu")
    engine = args.engine
    if engine == "trl":
        try:
            import trl  # noqa: F401
        except Exception as exc:  # a GPU image may lack TRL or its datasets dependency
            print(
                f"trl unavailable ({type(exc).__name__}: {exc}); using --engine torch",
                file=sys.stderr,
            )
            engine = "torch"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        step_times = (run_trl if engine == "trl" else run_torch)(model, args, bf16, cuda)
    except Exception as exc:
        if engine != "trl":
            raise
        # One shot on a lent GPU: a TRL/transformers mismatch there must not cost the figures.
        import traceback

        traceback.print_exc()
        print(f"trl run failed ({type(exc).__name__}); retrying with --engine torch", flush=True)
        engine = "torch"
        del model
        model, flops = build_model(args, dtype, "cuda" if cuda else "cpu")
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        step_times = run_torch(model, args, bf16, cuda)

    measured = step_times[args.warmup :]
    if len(measured) < 2:
        sys.exit("need at least warmup + 2 steps")
    elapsed = measured[-1] - measured[0]
    n_steps = len(measured) - 1
    tokens = n_steps * args.batch_size * args.seq_len
    tps = tokens / elapsed
    peak_tflops = args.peak_tflops or (lookup_peak(device_name) if cuda and bf16 else None)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "device": device_name,
        "engine": engine,
        "versions": versions(),
        "preset": args.preset,
        "precision": "bf16" if bf16 else "fp32",
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "activation_checkpointing": not args.no_checkpointing,
        "lora": LORA,
        "params_total": flops["params_total"],
        "params_matmul": flops["params_matmul"],
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "measured_steps": n_steps,
        "step_time_s": elapsed / n_steps,
        "tokens_per_s": tps,
        "flops_per_token_6N": flops["per_token_6n"],
        "flops_per_token_lora_4N": flops["per_token_4n"],
        "achieved_tflops_6N": tps * flops["per_token_6n"] / 1e12,
        "achieved_tflops_lora_4N": tps * flops["per_token_4n"] / 1e12,
        "peak_bf16_tflops": peak_tflops,
    }
    if peak_tflops:
        result["mfu_6N"] = result["achieved_tflops_6N"] / peak_tflops
        result["mfu_lora_4N"] = result["achieved_tflops_lora_4N"] / peak_tflops
    if cuda:
        result["peak_mem_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["peak_mem_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    else:
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    report(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="qwen2.5-0.5b")
    p.add_argument("--device", choices=["auto", "cpu"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32"], default="auto")
    p.add_argument("--engine", choices=["trl", "torch"], default="trl")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence (recipe: 1024)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per optimiser step")
    p.add_argument("--steps", type=int, default=20, help="measured steps")
    p.add_argument("--warmup", type=int, default=3, help="steps before timing starts")
    p.add_argument(
        "--no-checkpointing", action="store_true", help="disable activation checkpointing"
    )
    p.add_argument("--peak-tflops", type=float, default=None, help="override the card's bf16 peak")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    args.total_steps = args.warmup + args.steps + 1
    return args


def build_model(args: argparse.Namespace, dtype: Any, device: str) -> tuple[Any, dict[str, Any]]:
    """Random-weight model of the preset's architecture, and its FLOPs per trained token."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(**PRESETS[args.preset])
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    attention = 12 * config.num_hidden_layers * config.hidden_size * args.seq_len
    flops = {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_matmul": matmul,
        "per_token_6n": 6 * matmul + attention,
        "per_token_4n": 4 * matmul + attention,
    }
    return model, flops


def random_batches(args: argparse.Namespace, vocab: int) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(1)
    n = args.total_steps * args.batch_size
    return torch.randint(0, vocab, (n, args.seq_len), generator=g).tolist()


def run_trl(model: Any, args: argparse.Namespace, bf16: bool, cuda: bool) -> list[float]:
    """TRL's SFTTrainer on pre-tokenised rows (labels = input_ids, no padding)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    # The rows are token ids already; the trainer only needs a tokenizer for its pad token.
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
    )
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    ckpt = not args.no_checkpointing
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    ckpt_name = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-sft-"),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.total_steps,
        learning_rate=2e-5,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        max_length=args.seq_len,
        bf16=bf16,
        use_cpu=not cuda,
        logging_steps=10_000,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **{ckpt_name: ckpt, f"{ckpt_name}_kwargs": {"use_reentrant": False} if ckpt else None},
    )
    dataset = Dataset.from_dict({"input_ids": random_batches(args, model.config.vocab_size)})
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        peft_config=LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA),
        callbacks=[Timer()],
    )
    trainer.train()
    return times


def run_torch(model: Any, args: argparse.Namespace, bf16: bool, cuda: bool) -> list[float]:
    """The same LoRA model and batches in a plain loop: a fallback and a cross-check."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA))
    if not args.no_checkpointing:
        peft_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        peft_model.enable_input_require_grads()
    peft_model.train()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=2e-5)
    device = "cuda" if cuda else "cpu"
    rows = torch.tensor(random_batches(args, model.config.vocab_size))
    times = []
    for step in range(args.total_steps):
        batch = rows[step * args.batch_size : (step + 1) * args.batch_size].to(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = peft_model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return times


def lookup_peak(device_name: str) -> float | None:
    for fragment, tflops in BF16_PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "datasets"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            out[name] = "-"
    return out


def report(r: dict[str, Any]) -> None:
    if "peak_mem_allocated_gib" in r:
        mem = (
            f"peak memory {r['peak_mem_allocated_gib']:.2f} GiB allocated, "
            f"{r['peak_mem_reserved_gib']:.2f} GiB reserved"
        )
    else:
        mem = f"peak RSS {r['peak_rss_gib']:.2f} GiB"
    if "mfu_6N" in r:
        mfu = (
            f"MFU {100 * r['mfu_6N']:.1f}% (6N) / {100 * r['mfu_lora_4N']:.1f}% (LoRA-aware 4N)"
            f" of {r['peak_bf16_tflops']} TFLOP/s bf16"
        )
    else:
        mfu = "MFU n/a (no bf16 peak for this device)"
    lines = [
        f"{r['date']} {r['device']} | engine {r['engine']} | {r['preset']} {r['precision']} | "
        f"batch {r['batch_size']} x {r['seq_len']} tokens | "
        f"checkpointing {r['activation_checkpointing']}",
        f"  {r['tokens_per_s']:,.0f} tokens/s ({r['step_time_s'] * 1000:.1f} ms/step, "
        f"{r['measured_steps']} steps timed)",
        f"  {r['achieved_tflops_6N']:.2f} TFLOP/s (6N) | {mfu}",
        f"  {mem}",
        f"  params {r['params_total'] / 1e6:.0f}M total, {r['params_matmul'] / 1e6:.0f}M in "
        f"matmuls, {r['params_trainable'] / 1e6:.2f}M trainable | {r['versions']}",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
