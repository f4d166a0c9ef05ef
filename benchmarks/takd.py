"""Teacher assistants (Mirzadeh et al., AAAI 2020) and born-again networks (Furlanello et al., ICML 2018).

(a) the capacity gap: a small student distilled from MLP teachers of growing width,
(b) a teacher → assistant → student chain against direct distillation,
(c) born-again generations of one architecture,
each over paired seeds (data split and model seeds), with full labels and in the transfer
regime where the student sees 5% of the labels plus the unlabelled rest (teachers see all).
The KD setting (T, α) is chosen per regime on the validation split (seed 0, direct distillation from the
largest teacher) and then used by every distillation; the test split is scored once per model.

    nice -n 10 python benchmarks/takd.py --out takd.md                                   # section "takd"
    KDLIB_DATA_DIR=/work/shared/data nice -n 10 python benchmarks/takd.py --dataset mnist --out m.md  # "takd-mnist-10000"
    python benchmarks/takd.py --quick --out /tmp/takd.md                                  # smoke run
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import protocol  # noqa: E402
from kdlib import data, models  # noqa: E402
from kdlib.assistants import distill_chain  # noqa: E402
from kdlib.data import UNLABELLED, Split, Splits  # noqa: E402
from kdlib.ensembles import born_again  # noqa: E402
from kdlib.metrics import mean_and_std, parameter_count  # noqa: E402
from kdlib.training import distill, evaluate, train  # noqa: E402

TEACHER_WIDTHS = [16, 64, 256, 1024]  # depth-2 MLP teachers
STUDENT = dict(width=8, depth=1)  # the fixed small student
ASSISTANT = dict(width=64, depth=1)
KD_GRID = [(t, a) for t in (1.0, 2.0, 4.0, 8.0) for a in (0.5, 0.9, 1.0)]  # (T, α) candidates


def load(dataset, seed, mnist_train_size, quick):
    splits = protocol.load(dataset, quick, seed=seed)
    if dataset == "digits" or quick:
        return splits
    # scaled down for 2 CPU cores: a random subset of the 55000 training images, the full test set
    keep = torch.randperm(len(splits.train.x), generator=torch.Generator().manual_seed(seed))[:mnist_train_size]
    return Splits(Split(splits.train.x[keep], splits.train.y[keep]), splits.val, splits.test)


def run(dataset, seeds, epochs, lr, mnist_train_size, device, quick):
    """Every accuracy below is on the test split; returns ({row name: {regime: [accuracy per seed]}},
    {regime: ((T, α), validation record)})."""
    results, chosen = {}, {}

    def record(row, regime, value):
        results.setdefault(row, {}).setdefault(regime, []).append(value)

    for seed in seeds:
        splits = load(dataset, seed, mnist_train_size, quick)
        shape = tuple(splits.train.x.shape[1:])
        hidden = Split(splits.train.x, data.hide_labels(splits.train.y, 0.05, seed=seed))
        labelled = hidden.y != UNLABELLED
        regimes = {"full labels": splits.train, "5% labels": hidden}

        def build_teacher(width, seed_):
            return models.mlp(shape, 10, width=width, depth=2, seed=seed_)

        def build_student(seed_):
            return models.mlp(shape, 10, **STUDENT, seed=seed_)

        settings = dict(epochs=epochs, lr=lr, seed=seed, device=device, progress=False)
        # the student without a teacher: on every label, or on its 5% of labels (as many steps as the full run)
        for regime, labels_only, student_epochs in (("full labels", splits.train, epochs),
                                                     ("5% labels", Split(hidden.x[labelled], hidden.y[labelled]),
                                                      epochs * len(splits.train.x) // int(labelled.sum()))):
            net = build_student(seed)
            train(net, labels_only, epochs=student_epochs, lr=lr, seed=seed, device=device, progress=False)
            record("student alone", regime, evaluate(net, splits.test))

        teachers = {width: build_teacher(width, seed) for width in TEACHER_WIDTHS}
        for teacher in teachers.values():
            train(teacher, splits.train, **settings)
        if not chosen:  # seed 0: the KD setting of each regime, on validation accuracy of direct distillation
            for regime, student_data in regimes.items():
                def validation_accuracy(setting):
                    student = build_student(seed)
                    distill(student, teachers[TEACHER_WIDTHS[-1]], student_data, temperature=setting[0],
                            alpha=setting[1], **settings)
                    return evaluate(student, splits.val)
                chosen[regime] = protocol.choose(KD_GRID, validation_accuracy)
        kd = {regime: dict(temperature=chosen[regime][0][0], alpha=chosen[regime][0][1]) for regime in regimes}

        # (a) the gap curve: what kdlib.assistants.gap_sweep does, with each teacher trained once for both regimes
        for width, teacher in teachers.items():
            row = f"teacher width {width} ({parameter_count(teacher):,} params)"
            record(row, "teacher", evaluate(teacher, splits.test))
            for regime, student_data in regimes.items():
                student = build_student(seed)
                distill(student, teacher, student_data, **kd[regime], **settings)
                record(row, regime, evaluate(student, splits.test))
                if width == TEACHER_WIDTHS[-1]:
                    record("direct: teacher → student", regime, evaluate(student, splits.test))

        # (b) teacher → assistant → student against teacher → student, with the largest teacher above
        for regime, student_data in regimes.items():
            assistant = models.mlp(shape, 10, **ASSISTANT, seed=seed)
            _, assistant, student = distill_chain([teacher, assistant, build_student(seed)], student_data,
                                                  **kd[regime], **settings)
            record("chain: teacher → assistant → student", regime, evaluate(student, splits.test))
            record("assistant (in the chain)", regime, evaluate(assistant, splits.test))

        # (c) born-again generations, full labels, the assistant's architecture
        generations = born_again(lambda s: models.mlp(shape, 10, **ASSISTANT, seed=s), splits.train, splits.test,
                                 generations=3, **kd["full labels"], **settings)
        for generation, accuracy in enumerate(generations.accuracy):
            record(f"born-again generation {generation}", "full labels", accuracy)
        print(f"{dataset} seed {seed} done", flush=True)
    return results, chosen


def table(results, rows, columns):
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = [mean_and_std(results[row][c]) if c in results[row] else "" for c in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAPERS = ("What the papers report: Mirzadeh et al. (AAAI 2020) find, on CIFAR-10/100 with plain CNNs and "
          "ResNets, that a student's accuracy first rises then falls as its teacher grows, and that distilling "
          "through a mid-sized teacher assistant beats distilling from the large teacher directly. Furlanello "
          "et al. (ICML 2018) find born-again students (same architecture) more accurate than their teachers "
          "on CIFAR-10/100 (DenseNets, Wide-ResNets). Both are measured on deep convolutional networks with "
          "data augmentation; here: tiny MLPs on digit images, no augmentation.")


def paired(results, better, worse, regime):
    """Paired (same seed) difference accuracy(better) − accuracy(worse), with its 95 % interval."""
    return protocol.paired(results[better][regime], results[worse][regime])


def goals(results, regimes):
    """The comparisons the papers make, each a paired difference with a verdict (goal: > 0). A gain on top of
    KD is only like-for-like where that KD beats the student alone."""
    gap_rows = [r for r in results if r.startswith("teacher width")]
    ban_rows = [r for r in results if r.startswith("born-again")]
    chain, direct, alone = "chain: teacher → assistant → student", "direct: teacher → student", "student alone"
    rows = []
    for regime in regimes:
        kd_gain = paired(results, direct, alone, regime)
        kd_verdict = protocol.verdict(kd_gain, 0.0)
        # a mid-sized teacher fixed in advance (not the best on test, which would bias the difference upward)
        rows += [(f"{regime}: KD (direct) beats the student alone", kd_gain, kd_verdict),
                 (f"{regime}: student from teacher width {TEACHER_WIDTHS[1]} beats from width {TEACHER_WIDTHS[-1]}",
                  paired(results, gap_rows[1], gap_rows[-1], regime),
                  protocol.verdict(paired(results, gap_rows[1], gap_rows[-1], regime), 0.0, kd_verdict == "met")),
                 (f"{regime}: chain beats direct", paired(results, chain, direct, regime),
                  protocol.verdict(paired(results, chain, direct, regime), 0.0, kd_verdict == "met"))]
    last = paired(results, ban_rows[-1], ban_rows[0], "full labels")
    rows.append(("born-again: last generation beats generation 0", last, protocol.verdict(last, 0.0)))
    return protocol.goals_table(rows)


def report(dataset, shape, results, chosen, seeds, epochs, lr, seconds):
    gap_rows = [r for r in results if r.startswith("teacher width")]
    chain_rows = ["student alone", "direct: teacher → student", "chain: teacher → assistant → student",
                  "assistant (in the chain)"]
    ban_rows = [r for r in results if r.startswith("born-again")]
    student_parameters = parameter_count(models.mlp(shape, 10, **STUDENT))
    kd = "; ".join(f"{regime}: T = {setting[0]:g}, α = {setting[1]:g} (validation accuracy per (T, α): {record})"
                   for regime, (setting, record) in chosen.items())
    return (f"### {dataset}\n\nSeeds {list(seeds)} (each seed: data split, hidden labels and model initial weights); "
            f"Adam lr {lr}, {epochs} epochs, batch 64; accuracy on the test split, "
            f"mean ± sample std over seeds. KD settings chosen on the validation split (seed 0, direct distillation "
            f"from the largest teacher): {kd}. Student: MLP width {STUDENT['width']}, depth {STUDENT['depth']} "
            f"({student_parameters:,} params); teachers: depth-2 MLPs. "
            f"'5% labels': the student keeps 5% of the training labels (stratified) and learns the rest from the "
            f"teacher only; teachers always train on all labels. Wall time {seconds / 60:.1f} min on a shared, "
            f"busy machine.\n\n"
            + goals(results, ["full labels", "5% labels"])
            + "\n\n(a) Capacity gap: student accuracy against teacher size.\n\n"
            + table(results, gap_rows + ["student alone"], ["teacher", "full labels", "5% labels"])
            + f"\n\n(b) Teacher assistant: teacher width {TEACHER_WIDTHS[-1]} depth 2 → assistant width "
              f"{ASSISTANT['width']} depth {ASSISTANT['depth']} → student, against direct distillation "
              f"from the same teacher.\n\n"
            + table(results, chain_rows, ["full labels", "5% labels"])
            + f"\n\n(c) Born-again networks: MLP width {ASSISTANT['width']} depth {ASSISTANT['depth']}, generation 0 "
              "on labels, generation g distilled from g − 1 (new seed), full labels.\n\n"
            + table(results, ban_rows, ["full labels"])
            + "\n\n" + PAPERS)


def main(argv=None):
    parser = protocol.parser(__doc__)
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--mnist-train-size", type=int, default=10000, help="scaled-down MNIST training set")
    args = protocol.parse(parser, argv)
    if args.mnist_train_size < 100:
        parser.error(f"--mnist-train-size must be at least 100, got {args.mnist_train_size}")
    epochs, lr = (30, 3e-3) if args.dataset == "digits" else (5, 1e-3)
    epochs = 1 if args.quick else epochs
    seeds = protocol.seeds(args)
    start = time.time()
    results, chosen = run(args.dataset, seeds, epochs, lr, args.mnist_train_size, args.device, args.quick)
    name = "digits" if args.dataset == "digits" else f"mnist, {args.mnist_train_size} training images"
    shape = (1, 8, 8) if args.dataset == "digits" else (1, 28, 28)
    body = report(name, shape, results, chosen, seeds, epochs, lr, time.time() - start)
    section = "takd" if args.dataset == "digits" else f"takd-mnist-{args.mnist_train_size}"  # one section per size
    protocol.emit(args, section, f"Teacher assistants and born-again networks: {name} (benchmarks/takd.py)", body)


if __name__ == "__main__":
    main()
