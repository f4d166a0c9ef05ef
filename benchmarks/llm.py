"""Lesson 10 at a larger scale: on-policy vs off-policy distillation and reasoning traces, on addition.

    python benchmarks/llm.py --make-teacher      # regenerate kdlib/llm_teacher.pt and llm_student.pt bit for bit
    nice -n 10 python benchmarks/llm.py --out llm.md   # the benchmark (about 35 CPU-minutes at 1 thread)
    python benchmarks/llm.py --quick --out /tmp/llm.md  # a few-second smoke run

The teacher (kdlib.llm.tiny_gpt, width 64, 2 layers) learns 3-digit addition in both formats of
kdlib.llm (the answer directly, and a step-by-step trace then the answer) from the correct
completions of 20,000 problems (seed 0); checkpoint choice uses validation problems (seed 1),
never the test problems (seed 2). The benchmark trains students (width 32, 2 layers) for more epochs
and over more seeds than the lesson, and reports greedy answer accuracy on test problems, paired by seed
(same start or initial weights and batches per seed), under the protocol of benchmarks/protocol.py: each
method's learning rate is chosen from LEARNING_RATES on the validation problems (seed 0's student), the other
seeds train at it, and the test problems are scored once.
"""
import hashlib
import io
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import protocol  # noqa: E402
from kdlib import llm  # noqa: E402

DIGITS = 3
TEACHER = dict(width=64, layers=2, heads=4, context=24)
TEACHER_PROBLEMS, TEACHER_ROUNDS, TEACHER_LR = 20_000, 22, 3e-3
VALIDATION_SEED, TEST_SEED = 1, 2
# the students' common starting point: token-level KD on the teacher's traces ("SFT", as GKD's students start),
# 3 chunks of 5 epochs: stopped at 8% validation accuracy (a 4th chunk reaches 100%) to leave the methods room
STUDENT = dict(width=32, layers=2, heads=2, context=24)
STUDENT_PROBLEMS, STUDENT_PROBLEM_SEED, STUDENT_CHUNKS, STUDENT_EPOCHS_PER_CHUNK, STUDENT_LR = 2000, 10, 3, 5, 1e-2
# each method's candidates: reverse KL lost at the forward-KL students' rate in the lesson, so every method gets
# the same three trials (Adam, batches of 32 from the start, 64 from scratch)
LEARNING_RATES = (1e-3, 3e-3, 1e-2)


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
    parser = protocol.parser(__doc__)
    parser.add_argument("--make-teacher", action="store_true", help="retrain kdlib/llm_teacher.pt from seed 0")
    parser.add_argument("--teacher-out", type=Path, default=llm.TEACHER_PATH, help="where --make-teacher writes the teacher")
    parser.add_argument("--student-out", type=Path, default=llm.STUDENT_PATH, help="... and the students' start")
    parser.add_argument("--student-only", action="store_true", help="with --make-teacher: keep the teacher, remake the start")
    args = protocol.parse(parser)
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


def tuned(train, score, seeds):
    """Train seed 0 at every rate of LEARNING_RATES, keep the rate whose student scores best on validation
    (``score``), train the other seeds at it. Returns the students in seed order and the choice's record."""
    first = {lr: train(lr, seeds[0]) for lr in LEARNING_RATES}
    lr, record = protocol.choose(LEARNING_RATES, lambda lr: score(first[lr]))
    return [first[lr]] + [train(lr, seed) for seed in seeds[1:]], f"lr {lr:g} (validation accuracy: {record})"


def run_benchmark(args):
    device, seeds = torch.device(args.device), protocol.seeds(args)
    teacher = llm.load_teacher().to(device)
    count = 100 if args.quick else 1000
    test, test_small, validation = (llm.problems(count, DIGITS, seed=TEST_SEED),
                                    llm.problems(count, DIGITS, seed=TEST_SEED, low_digits=2),
                                    llm.problems(count // 2, DIGITS, seed=VALIDATION_SEED))
    rows, goals, choices = [], [], []

    def measure(label, name, train, trace):
        students, record = tuned(train, lambda s: llm.accuracy(s, *validation, DIGITS, trace), seeds)
        scores = [[llm.accuracy(s, *problems, DIGITS, trace) for s in students] for problems in (test, test_small)]
        rows.append(f"| {label} | {name} | {protocol.mean_sd(scores[0])} | {protocol.mean_sd(scores[1])} |")
        choices.append(f"{label}, {name}: {record}")
        print(rows[-1], flush=True)
        return scores

    # 1. off- vs on-policy, continued from the shipped start, longer than the lesson (3 epochs: 189 batches of 32)
    epochs = 1 if args.quick else 3
    a, b = llm.problems(200 if args.quick else 2000, DIGITS, seed=STUDENT_PROBLEM_SEED)
    prompts, completions = llm.tokens(a, b, DIGITS, trace=True)
    written = llm.generate(teacher, prompts, completions.shape[1], temperature=0)
    start = llm.load_student_start()

    def from_start(knobs):
        def train(lr, seed):
            student = llm.tiny_gpt(**STUDENT).to(device)
            student.load_state_dict(start.state_dict())
            llm.distill(student, teacher, prompts, written, epochs=epochs, lr=lr, batch_size=32, seed=seed,
                        progress=False, **knobs)
            return student
        return train

    label = f"from the shipped start, {epochs} more epoch{'s' * (epochs != 1)}"
    acc = {name: measure(label, name, from_start(knobs), trace=True)[0] for name, knobs in {
        "off-policy, forward KL (λ=0, β=0)": dict(lmbda=0.0, beta=0.0),
        "on-policy, forward KL (λ=1, β=0)": dict(lmbda=1.0, beta=0.0),
        "on-policy, reverse KL (λ=1, β=1)": dict(lmbda=1.0, beta=1.0),
        "mixed, generalized JSD (λ=0.5, β=0.5)": dict(lmbda=0.5, beta=0.5)}.items()}
    off, on, reverse, mixed = acc.values()
    for goal, (better, worse) in {"on-policy beats off-policy (forward KL; GKD)": (on, off),
                                  "reverse KL beats forward KL (both on-policy; MiniLLM)": (reverse, on),
                                  "mixed generalized JSD beats off-policy forward KL": (mixed, off)}.items():
        measured = protocol.paired(better, worse)
        goals.append((goal + ", test accuracy difference", measured, protocol.verdict(measured, 0.0)))

    # 2. answers vs traces, from scratch, on all 3-digit problems and on problems below 100 only (19 epochs: 608 batches)
    epochs = 1 if args.quick else 19
    for low_digits, label in ((None, "3-digit problems"), (2, "problems below 100 only")):
        a, b = llm.problems(200 if args.quick else 2000, DIGITS, seed=STUDENT_PROBLEM_SEED, low_digits=low_digits)
        acc = {}
        for trace in (False, True):
            prompts, completions = llm.tokens(a, b, DIGITS, trace)
            written = llm.generate(teacher, prompts, completions.shape[1], temperature=0)

            def train(lr, seed):
                student = llm.tiny_gpt(**STUDENT, seed=100 + seed).to(device)
                llm.distill(student, teacher, prompts, written, epochs=epochs, lr=lr, batch_size=64, seed=seed,
                            progress=False)
                return student
            name = "teacher's traces" if trace else "teacher's answers only"
            acc[trace] = measure(f"from scratch, {epochs} epoch{'s' * (epochs != 1)}, trained on {label}", name, train,
                                trace)[0]
        measured = protocol.paired(acc[True], acc[False])
        goals.append((f"traces beat answers, trained on {label}, test accuracy on 3-digit problems", measured,
                      protocol.verdict(measured, 0.0)))

    body = "\n".join([
        protocol.goals_table(goals), "",
        "| experiment | students | test accuracy, 3-digit problems (mean ± sd over seeds) | test accuracy, problems "
        "below 100 |", "|---|---|---|---|", *rows, "",
        f"Seeds: {len(seeds)}, paired; test problems: {count} (and {count} below 100); validation problems: "
        f"{count // 2}. Learning rates chosen on validation:", "", *[f"- {c}" for c in choices]])
    protocol.emit(args, "llm", "Distilling a tiny GPT on addition: lesson 10 at a larger scale (benchmarks/llm.py)",
                  body)


if __name__ == "__main__":
    main()
