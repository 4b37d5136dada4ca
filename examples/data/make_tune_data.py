"""Writes the small regression data sets of examples/tune.opt (seeded, reproducible)."""
import random

random.seed(7)
n = 5
w_true = [1.0, -2.0, 0.5, 0.0, 3.0]


def sample(m, path_x, path_y):
    with open(path_x, "w") as fx, open(path_y, "w") as fy:
        for _ in range(m):
            x = [random.gauss(0, 1) for _ in range(n)]
            y = sum(a * b for a, b in zip(x, w_true)) + random.gauss(0, 1.5)
            fx.write(",".join(f"{v:.6f}" for v in x) + "\n")
            fy.write(f"{y:.6f}\n")


sample(12, "tune_X.csv", "tune_y.csv")
sample(30, "tune_Xv.csv", "tune_yv.csv")
