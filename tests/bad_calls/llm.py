"""Malformed calls to kdlib.llm (lesson 10): token losses, the addition task, the tiny GPT, generation, GKD on fit."""
import torch

from kdlib import llm

S, T = torch.zeros(2, 3, 5), torch.zeros(2, 3, 5)
PROMPT = torch.zeros(1, 3, dtype=torch.long)

BAD_CALLS = [
    ("reverse KL on 2-D logits", lambda: llm.reverse_kl_loss(torch.zeros(2, 5), torch.zeros(2, 5)), ValueError, "(batch, sequence, vocab)"),
    ("forward KL with NaN", lambda: llm.forward_kl_loss(S * float("nan"), T), ValueError, "NaN or infinite"),
    ("vocabularies of different sizes", lambda: llm.reverse_kl_loss(S, torch.zeros(2, 3, 4)), ValueError, "must have the same shape"),
    ("beta above 1", lambda: llm.generalized_jsd_loss(S, T, beta=1.5), ValueError, "beta must be in [0, 1], got 1.5"),
    ("temperature 0", lambda: llm.reverse_kl_loss(S, T, temperature=0), ValueError, "temperature must be a finite number > 0, got 0"),
    ("float mask", lambda: llm.reverse_kl_loss(S, T, mask=torch.ones(2, 3)), TypeError, "mask must be a bool tensor"),
    ("mask of another shape", lambda: llm.reverse_kl_loss(S, T, mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, "mask must have shape (2, 3)"),
    ("decode an id outside the vocabulary", lambda: llm.decode([99]), ValueError, "indices must be in [0, 13]"),
    ("encode an unknown character", lambda: llm.encode("x"), ValueError, "characters ['x'] are not in the vocabulary"),
    ("no problems", lambda: llm.problems(0, 3, 0), ValueError, "count must be an integer >= 1, got 0"),
    ("fractional digits", lambda: llm.problems(5, 2.5, 0), TypeError, "digits must be an integer >= 1, got float 2.5"),
    ("tiny_gpt width 0", lambda: llm.tiny_gpt(width=0), ValueError, "width must be an integer >= 1, got 0"),
    ("generate from a string", lambda: llm.generate("gpt", PROMPT, 4), TypeError, "model must be a torch.nn.Module, got str"),
    ("generate nothing", lambda: llm.generate(llm.tiny_gpt(), PROMPT, 0), ValueError, "length must be an integer >= 1, got 0"),
    ("lmbda above 1", lambda: llm.distill(llm.tiny_gpt(), llm.tiny_gpt(), PROMPT, PROMPT, lmbda=2.0), ValueError, "lmbda must be in [0, 1], got 2.0"),
    ("distill for a number of steps", lambda: llm.distill(llm.tiny_gpt(), llm.tiny_gpt(), PROMPT, PROMPT, steps=60), TypeError, "unknown training setting(s) ['steps']"),
    ("distill with a validation split of images", lambda: llm.distill(llm.tiny_gpt(), llm.tiny_gpt(), PROMPT, PROMPT, val=(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))), ValueError, "val (a Split of images and labels) does not apply"),
    ("negative beta in the toy fit", lambda: llm.fit_gaussian(torch.ones(5) / 5, torch.arange(5.0), beta=-1.0), ValueError, "beta must be in [0, 1], got -1.0"),
    ("prefix fraction of lists", lambda: llm.correct_prefix_fraction(["ab"], ["ab", "cd"]), TypeError, "generated must be a torch.Tensor, got list"),
]
