"""Writes the data sets of the bilevel examples (tune*.opt), seeded and reproducible:

    python3 make_bilevel_data.py      # run in examples/data/

ridge (tune.opt), logistic (tune_logistic.opt), lasso (tune_lasso.opt), the multiclass
SVM (tune_svm.opt: 20 samples x 5 features x 3 classes) and dataset distillation
(distill.opt: two Gaussian blobs in the plane).
"""
import math
import random


def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            if isinstance(r, (list, tuple)):
                f.write(",".join(f"{v:.6f}" for v in r) + "\n")
            else:
                f.write(f"{r:.6f}\n")


def gauss_rows(m, n, rng):
    return [[rng.gauss(0, 1) for _ in range(n)] for _ in range(m)]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def regression(rng, n, w, m, noise):
    X = gauss_rows(m, n, rng)
    y = [dot(x, w) + rng.gauss(0, noise) for x in X]
    return X, y


# Ridge: more features than the training set can pin down, so the penalty matters.
rng = random.Random(7)
n = 20
w = [rng.gauss(0, 0.5) for _ in range(n)]
X, y = regression(rng, n, w, 30, 1.0)
Xv, yv = regression(rng, n, w, 100, 1.0)
write("tune_X.csv", X)
write("tune_y.csv", y)
write("tune_Xv.csv", Xv)
write("tune_yv.csv", yv)

# Logistic regression: labels in {-1, +1} from a noisy linear score.
rng = random.Random(11)
n = 10
w = [rng.gauss(0, 1) for _ in range(n)]


def labels(X):
    return [1.0 if dot(x, w) + rng.gauss(0, 1.5) > 0 else -1.0 for x in X]


X = gauss_rows(30, n, rng)
Xv = gauss_rows(100, n, rng)
write("logistic_X.csv", X)
write("logistic_y.csv", labels(X))
write("logistic_Xv.csv", Xv)
write("logistic_yv.csv", labels(Xv))

# Lasso: a sparse truth (4 of 25 coefficients).
rng = random.Random(13)
n = 25
w = [0.0] * n
for k, v in zip([0, 5, 11, 17], [2.0, -1.5, 1.0, 0.8]):
    w[k] = v
X, y = regression(rng, n, w, 40, 0.8)
Xv, yv = regression(rng, n, w, 100, 0.8)
write("tlasso_X.csv", X)
write("tlasso_y.csv", y)
write("tlasso_Xv.csv", Xv)
write("tlasso_yv.csv", yv)

# Multiclass SVM: 3 classes with Gaussian means in 5 dimensions; one-hot labels.
rng = random.Random(17)
n, k = 5, 3
means = [[rng.gauss(0, 1) for _ in range(n)] for _ in range(k)]


def classes(m):
    X, Y = [], []
    for i in range(m):
        c = i % k
        X.append([means[c][j] + rng.gauss(0, 1.0) for j in range(n)])
        Y.append([1.0 if j == c else 0.0 for j in range(k)])
    return X, Y


X, Y = classes(20)
Xv, Yv = classes(60)
write("svm_X.csv", X)
write("svm_Y.csv", Y)
write("svm_Xv.csv", Xv)
write("svm_Yv.csv", Yv)

# Distillation: two blobs in the plane, 100 points, labels +1 / -1.
rng = random.Random(19)
X, y = [], []
for i in range(100):
    s = 1.0 if i % 2 == 0 else -1.0
    X.append([s * 1.0 + rng.gauss(0, 0.8), s * 0.5 + rng.gauss(0, 0.8)])
    y.append(s)
write("distill_X.csv", X)
write("distill_y.csv", y)
