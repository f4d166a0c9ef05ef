"""Dataset distillation on MNIST: distribution matching (DM), gradient matching (DC) and Wang et al.'s
unrolled distillation, scaled down for 2 CPU cores; accuracy of fresh networks trained on the synthetic set.

Run: KDLIB_DATA_DIR=/work/shared/data nice -n 10 python benchmarks/dataset_distillation.py [--quick]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.report import write_section  # noqa: E402
from kdlib.data import load_splits  # noqa: E402
from kdlib.dataset_distillation import (distill_dataset, distribution_matching, evaluate_synthetic,  # noqa: E402
                                        gradient_matching, initial_synthetic, poison_labels, unrolled_train)
from kdlib.metrics import mean_and_std  # noqa: E402
from kdlib.models import cnn, mlp  # noqa: E402
from kdlib.training import evaluate  # noqa: E402

torch.set_num_threads(1)
parser = argparse.ArgumentParser()
parser.add_argument("--dm-iterations", type=int, default=800)
parser.add_argument("--dc-iterations", type=int, default=30)
parser.add_argument("--wang-iterations", type=int, default=150)
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--epochs", type=int, default=200)
parser.add_argument("--width", type=int, default=8)
parser.add_argument("--no-report", action="store_true", help="print only, leave docs/results.md alone")
args = parser.parse_args()

splits = load_splits("mnist", seed=0)
real, test = splits.train, splits.test
convnet = lambda seed: cnn(1, 10, width=args.width, depth=3, seed=seed)
mlp_net = lambda seed: mlp((1, 28, 28), 10, width=128, depth=1, seed=seed)
# evaluation networks get seeds 1000+ so they never coincide with a network used while distilling
eval_cnn = lambda seed: convnet(1000 + seed)
eval_mlp = lambda seed: mlp_net(1000 + seed)
PAPER = {("DM", 1): "89.7 ± 0.6", ("DM", 10): "97.5 ± 0.1", ("DC", 1): "91.7 ± 0.5", ("DC", 10): "97.4 ± 0.2",
         ("Wang fixed init", 1): "~94 (abstract; LeNet, fixed init)", ("random real", 1): "64.9 ± 3.5 (DC paper)",
         ("random real", 10): "95.1 ± 0.9 (DC paper)"}
rows, stored = [], {}
load_at_start = os.getloadavg()[0]


def score(name, ipc, synthetic, seconds, note=""):
    cnn_acc = evaluate_synthetic(synthetic, eval_cnn, test, runs=args.runs, epochs=args.epochs, max_shift=2,
                                 progress=False)
    mlp_acc = evaluate_synthetic(synthetic, eval_mlp, test, runs=args.runs, epochs=args.epochs, max_shift=2,
                                 progress=False)
    row = (name, ipc, mean_and_std(cnn_acc), mean_and_std(mlp_acc), PAPER.get((name, ipc), "—"),
           f"{seconds:.0f}", note)
    print(" | ".join(map(str, row)), flush=True)
    rows.append(row)
    stored[(name, ipc)] = synthetic


for ipc in (1, 10):
    score("random real", ipc, initial_synthetic(real, ipc, seed=0), 0.0, "DM/DC start point")
    start = time.perf_counter()
    synthetic = distribution_matching(convnet, real, ipc, iterations=args.dm_iterations, batch_size=64,
                                      max_shift=2, seed=0)
    score("DM", ipc, synthetic, time.perf_counter() - start, f"{args.dm_iterations} iterations")

start = time.perf_counter()
synthetic = gradient_matching(convnet, real, 1, iterations=args.dc_iterations, outer_loop=1, inner_loop=1,
                              batch_size=64, seed=0)
score("DC", 1, synthetic, time.perf_counter() - start, f"{args.dc_iterations} iterations, outer/inner loop 1/1")

# Wang et al.: noise images + 5 learned step sizes, trained for one fixed initialisation
start = time.perf_counter()
distilled = distill_dataset(convnet, real, 1, steps=5, iterations=args.wang_iterations, batch_size=128,
                            image_lr=0.1, initial_lr=0.3, fixed_init=True, seed=0)
seconds = time.perf_counter() - start
fixed = evaluate(unrolled_train(convnet(0), distilled.synthetic, distilled.learning_rates), test)
noise = evaluate(unrolled_train(convnet(0), initial_synthetic(real, 1, init="noise"), distilled.learning_rates), test)
other_inits = [evaluate(unrolled_train(eval_cnn(s), distilled.synthetic, distilled.learning_rates), test)
               for s in range(args.runs)]
wang = (f"Wang fixed init | 1 | {fixed:.3f} on its own init (noise start: {noise:.3f}); "
        f"{mean_and_std(other_inits)} on {args.runs} other inits, same 5 learned steps | — | "
        f"{PAPER[('Wang fixed init', 1)]} | {seconds:.0f} | {args.wang_iterations} iterations, 5 steps")
print(wang, flush=True)

clean = stored[("DM", 10)]
poison_rows = []
for label, poisoned in (("c → c+1 mod 10", poison_labels(clean, shift=1)),
                        ("swap 3 ↔ 8 only", poison_labels(clean, mapping={3: 8, 8: 3}))):
    acc = evaluate_synthetic(poisoned, eval_cnn, test, runs=args.runs, epochs=args.epochs, max_shift=2, progress=False)
    poison_rows.append(f"| {label} | {mean_and_std(acc)} |")
    print(label, mean_and_std(acc), flush=True)

header = ("| method | images/class | ConvNet-3 (width %d, fresh inits) | MLP 784-128-10 (cross-arch) | paper | "
          "distill wall s | setting |\n|---|---|---|---|---|---|---|\n") % args.width
body = (
    "Scaled down for 2 shared CPU cores: distilling and evaluation network is kdlib `cnn(width=%d, depth=3)` "
    "(channels %d/%d/%d, no normalisation, global average pool) instead of the papers' ConvNet-3 (width 128, "
    "instance norm); DM %d iterations with 64 real images per class (paper: 20000 with 256); DC %d iterations "
    "with outer/inner loop 1/1 (paper: 1000); evaluation: Adam lr 1e-3, %d full-batch epochs, random shifts ±2 px "
    "(paper: SGD 1000 epochs with DSA augmentation); %d fresh networks per cell. The machine was shared with "
    "other jobs (1-minute load average %.1f at start, %.1f at end, on 2 cores), so wall times are inflated and noisy.\n\n"
    % (args.width, args.width, 2 * args.width, 4 * args.width, args.dm_iterations, args.dc_iterations, args.epochs,
       args.runs, load_at_start, os.getloadavg()[0])
    + header + "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows) + "\n| " + wang + " |\n\n"
    + "Poisoned: the DM 10 images/class set with flipped labels, ConvNet accuracy on the real test set "
    "(clean: %s).\n\n| labels | accuracy |\n|---|---|\n" % rows[3][2] + "\n".join(poison_rows) + "\n")
print(body)
if not args.no_report:
    write_section("dataset_distillation", "Dataset distillation (MNIST)", body)
