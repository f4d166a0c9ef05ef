"""Lesson 10 at a larger scale: on-policy vs off-policy distillation and reasoning traces, on addition.

    python benchmarks/llm.py --make-teacher      # regenerate kdlib/llm_teacher.pt and llm_student.pt bit for bit
    python benchmarks/llm.py --out table.md      # the benchmark (≤ 30 min at 1 thread)
    python benchmarks/llm.py --quick             # a few-second smoke run

The teacher (kdlib.llm.tiny_gpt, width 64, 2 layers) learns 3-digit addition in both formats of
kdlib.llm (the answer directly, and a step-by-step trace then the answer) from the correct
completions of 20,000 problems (seed 0); checkpoint choice uses validation problems (seed 1),
never the test problems (seed 2). The benchmark trains students (width 32, 2 layers) for more epochs
and over more seeds than the lesson, and reports greedy answer accuracy on test problems as
mean ± std over paired seeds (same initial weights and batches per seed) and the paired difference.
"""
import argparse
import hashlib
import io
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdlib import llm  # noqa: E402

DIGITS = 3
TEACHER = dict(width=64, layers=2, heads=4, context=24)
TEACHER_PROBLEMS, TEACHER_ROUNDS, TEACHER_LR = 20_000, 22, 3e-3
VALIDATION_SEED, TEST_SEED = 1, 2
# the students' common starting point: token-level KD on the teacher's traces ("SFT", as GKD's students start),
# 3 chunks of 5 epochs: stopped at 8% validation accuracy (a 4th chunk reaches 100%) to leave the methods room
STUDENT = dict(width=32, layers=2, heads=2, context=24)
STUDENT_PROBLEMS, STUDENT_PROBLEM_SEED, STUDENT_CHUNKS, STUDENT_EPOCHS_PER_CHUNK, STUDENT_LR = 2000, 10, 3, 5, 1e-2


def make_teacher(rounds=TEACHER_ROUNDS, progress=True):
    """Train the teacher from seed 0: each round is one epoch over half the problems (the halves alternate) in
    each format, the learning rate falling on a cosine from 3e-3 over the rounds."""
    a, b = llm.problems(TEACHER_PROBLEMS, DIGITS, seed=0)
    formats = [llm.tokens(a, b, DIGITS, trace) for trace in (False, True)]
    half = TEACHER_PROBLEMS // 2
    va, vb = llm.problems(1000, DIGITS, seed=VALIDATION_SEED)
    teacher = llm.tiny_gpt(**TEACHER, seed=0)
    start = time.perf_counter()
    for round_ in range(rounds):
        lr = TEACHER_LR * 0.5 * (1 + math.cos(math.pi * round_ / rounds))
        rows = slice((round_ % 2) * half, (round_ % 2 + 1) * half)
        for trace, (prompts, completions) in enumerate(formats):
            llm.train_on_text(teacher, prompts[rows], completions[rows], epochs=1, lr=lr, batch_size=64,
                              seed=2 * round_ + trace, progress=False)
        if progress:
            print(f"round {round_ + 1}/{rounds} lr {lr:.5f} ({time.perf_counter() - start:.0f} s): validation accuracy "
                  f"direct {llm.accuracy(teacher, va, vb, DIGITS, False):.3f}, "
                  f"trace {llm.accuracy(teacher, va, vb, DIGITS, True):.3f}", flush=True)
    return teacher.eval()


def make_student_start(teacher, chunks=STUDENT_CHUNKS, progress=True):
    """The students' starting point: width 32, 2 layers, seed 100, off-policy forward KL on the teacher's traces
    (``chunks`` × 5 epochs of 32 batches)."""
    a, b = llm.problems(STUDENT_PROBLEMS, DIGITS, seed=STUDENT_PROBLEM_SEED)
    prompts, completions = llm.tokens(a, b, DIGITS, trace=True)
    written = llm.generate(teacher, prompts, completions.shape[1], temperature=0)  # the teacher's text
    va, vb = llm.problems(300, DIGITS, seed=VALIDATION_SEED)
    student = llm.tiny_gpt(**STUDENT, seed=100)
    for chunk in range(chunks):
        llm.distill(student, teacher, prompts, written, epochs=STUDENT_EPOCHS_PER_CHUNK, lr=STUDENT_LR, batch_size=64,
                    seed=chunk, progress=False)
        if progress:
            print(f"student start, epoch {STUDENT_EPOCHS_PER_CHUNK * (chunk + 1)}: validation accuracy (trace) "
                  f"{llm.accuracy(student, va, vb, DIGITS, True):.3f}", flush=True)
    return student.eval()


def save_model(model, config, path):
    buffer = io.BytesIO()
    torch.save({"config": config, "state_dict": model.state_dict()}, buffer)
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-teacher", action="store_true", help="retrain kdlib/llm_teacher.pt from seed 0")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run (tiny budgets)")
    parser.add_argument("--device", default="cpu", help="torch device for the students (default cpu)")
    parser.add_argument("--out", type=Path, help="write the markdown table to this file")
    parser.add_argument("--teacher-out", type=Path, default=llm.TEACHER_PATH, help="where --make-teacher writes the teacher")
    parser.add_argument("--student-out", type=Path, default=llm.STUDENT_PATH, help="... and the students' start")
    parser.add_argument("--student-only", action="store_true", help="with --make-teacher: keep the teacher, remake the start")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.make_teacher:
        if args.student_only:
            teacher = llm.load_teacher()
        else:
            teacher = make_teacher(rounds=2 if args.quick else TEACHER_ROUNDS)
            print(f"wrote {args.teacher_out} sha256 {save_model(teacher, TEACHER, args.teacher_out)}")
        student = make_student_start(teacher, chunks=1 if args.quick else STUDENT_CHUNKS)
        print(f"wrote {args.student_out} sha256 {save_model(student, STUDENT, args.student_out)}")
        return
    run_benchmark(args)


def paired(rows, a, b):
    """'mean ± std' of the per-seed difference b − a."""
    return mean_and_std([y - x for x, y in zip(rows[a], rows[b])])


def mean_and_std(values):
    values = torch.tensor(values, dtype=torch.float64)
    std = values.std().item() if len(values) > 1 else 0.0
    return f"{values.mean().item():.3f} ± {std:.3f}"


def run_benchmark(args):
    quick = args.quick
    device = torch.device(args.device)
    teacher = llm.load_teacher().to(device)
    seeds = range(2 if quick else 5)
    lines = ["| experiment | students | test accuracy, 3-digit problems (mean ± std over seeds) | paired difference vs "
             "first row | test accuracy, problems below 100 | paired difference |", "|---|---|---|---|---|---|"]
    test_a, test_b = llm.problems(100 if quick else 1000, DIGITS, seed=TEST_SEED)
    small_a, small_b = llm.problems(100 if quick else 1000, DIGITS, seed=TEST_SEED, low_digits=2)
    start_time = time.perf_counter()

    # 1. off- vs on-policy, continued from the shipped start, longer than the lesson (3 epochs: 189 batches of 32)
    epochs = 1 if quick else 3
    a, b = llm.problems(200 if quick else 2000, DIGITS, seed=STUDENT_PROBLEM_SEED)
    prompts, completions = llm.tokens(a, b, DIGITS, trace=True)
    written = llm.generate(teacher, prompts, completions.shape[1], temperature=0)
    start = llm.load_student_start()
    methods = {"off-policy, forward KL (λ=0, β=0)": dict(lmbda=0.0, beta=0.0),
               "on-policy, forward KL (λ=1, β=0)": dict(lmbda=1.0, beta=0.0),
               "on-policy, reverse KL (λ=1, β=1)": dict(lmbda=1.0, beta=1.0),
               "mixed, generalized JSD (λ=0.5, β=0.5)": dict(lmbda=0.5, beta=0.5)}
    rows, small = {}, {}
    for name, knobs in methods.items():
        rows[name] = []
        for seed in seeds:
            student = llm.tiny_gpt(**STUDENT).to(device)
            student.load_state_dict(start.state_dict())
            llm.distill(student, teacher, prompts, written, epochs=epochs, lr=3e-3, batch_size=32, seed=seed,
                        progress=False, **knobs)
            rows[name].append(llm.accuracy(student, test_a, test_b, DIGITS, True))
            small.setdefault(name, []).append(llm.accuracy(student, small_a, small_b, DIGITS, True))
        print(f"{name}: {mean_and_std(rows[name])} ({time.perf_counter() - start_time:.0f} s)", flush=True)
    first = next(iter(methods))
    for name in methods:
        lines.append(f"| from the shipped start, {epochs} more epochs | {name} | {mean_and_std(rows[name])} | "
                     f"{'—' if name == first else paired(rows, first, name)} | {mean_and_std(small[name])} | "
                     f"{'—' if name == first else paired(small, first, name)} |")

    # 2. answers vs traces, from scratch, on all 3-digit problems and on problems below 100 only (19 epochs: 608 batches)
    epochs = 1 if quick else 19
    for low_digits, label in ((None, "3-digit problems"), (2, "problems below 100 only")):
        a, b = llm.problems(200 if quick else 2000, DIGITS, seed=STUDENT_PROBLEM_SEED, low_digits=low_digits)
        rows, small = {}, {}
        for trace in (False, True):
            name = "teacher's traces" if trace else "teacher's answers only"
            prompts, completions = llm.tokens(a, b, DIGITS, trace)
            written = llm.generate(teacher, prompts, completions.shape[1], temperature=0)
            rows[name] = []
            for seed in seeds:
                student = llm.tiny_gpt(**STUDENT, seed=100 + seed).to(device)
                llm.distill(student, teacher, prompts, written, epochs=epochs, lr=STUDENT_LR, batch_size=64, seed=seed,
                            progress=False)
                rows[name].append(llm.accuracy(student, test_a, test_b, DIGITS, trace))
                small.setdefault(name, []).append(llm.accuracy(student, small_a, small_b, DIGITS, trace))
            print(f"{label}, {name}: {mean_and_std(rows[name])} ({time.perf_counter() - start_time:.0f} s)", flush=True)
        for name in rows:
            lines.append(f"| from scratch, {epochs} epochs, trained on {label} | {name} | {mean_and_std(rows[name])} | "
                         f"{'—' if name.endswith('only') else paired(rows, next(iter(rows)), name)} | "
                         f"{mean_and_std(small[name])} | "
                         f"{'—' if name.endswith('only') else paired(small, next(iter(small)), name)} |")
    lines.append(f"\nSeeds: {len(seeds)}, paired (same start or initial weights and batches per seed); test problems: "
                 f"{len(test_a)}; total {time.perf_counter() - start_time:.0f} s on {device} at 1 thread.")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
