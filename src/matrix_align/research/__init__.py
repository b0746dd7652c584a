"""Research measures: figures the benches in ``bench/`` print to decide a design (docs/effect.md,
docs/self-alignment.md), not part of any command. Above ``evaluate``: they read and extend
evaluate folders.

- ``effect``: the effect figures of an evaluation folder (refused, answered, made worse);
- ``specificity``: how particular to its own query the feedback behind a revision is;
- ``replay``: an evaluation folder's MATRIX scenes replayed with other late-stage settings;
- ``adapter_agreement``: llama.cpp with a GGUF adapter against PEFT, position by position.
"""
