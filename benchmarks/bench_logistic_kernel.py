"""One pass of the LogisticRegression kernel (loss + gradient) over the full Fashion-MNIST training set:
time per pass, GFLOP/s and % of the machine's FMA peak, for uint8 / float32 / float64 X and 1 / 2 threads.

    python benchmarks/bench_logistic_kernel.py [--data-dir DIR] [--repeats 5]
    python benchmarks/bench_logistic_kernel.py --precision     # float32 vs float64 logits, near the optimum

Useful work per pass: 2 n d K flops for the logits and 2 n d K for X^T G (1.88 GFLOP at K = 10).
The kernel computes in float64, whose FMA peak is half the float32 peak that peak_fma_flops measures;
both percentages are printed. Every timed result is first checked against the float64 reference.

--precision answers the kernel's design question (see src_cpp/csoftmax/kernels/logistic_loss_gradient.hpp):
how far would float32 logits put the loss and the gradient from float64 ones? It fits coef near the
C = 1 optimum with SciPy's L-BFGS-B driven by the kernel, then compares, against the float64 reference,
(a) the kernel and (b) logits from float32 X and float32 coef (NumPy's sgemm) with everything after
them in float64.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import csoftmax
from csoftmax import _core, ops, reference


def fashion_mnist(data_dir):
    data = csoftmax.load_fashion_mnist(data_dir, sample=False, download=False)
    X = np.ascontiguousarray(data.train_images.reshape(len(data.train_images), -1))
    return X, data.train_labels.astype(np.int64)


def pass_seconds(X, y, coef, b, x_scale, repeats):
    """Median wall seconds per pass, and median CPU seconds of the process per pass (all threads): on a
    machine shared with other jobs the wall time counts their turns too, the CPU time does not."""
    ops.logistic_loss_gradient(X, y, None, coef, b, x_scale=x_scale)  # warm up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        ops.logistic_loss_gradient(X, y, None, coef, b, x_scale=x_scale)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def relative_errors(got, ref):
    """|loss error| / |loss|, and the largest gradient error over the largest gradient entry."""
    return abs(got[0] - ref[0]) / abs(ref[0]), float(np.abs(got[1] - ref[1]).max() / np.abs(ref[1]).max())


def timings(X8, y, repeats):
    n, d = X8.shape
    K = 10
    rng = np.random.default_rng(0)
    coef, b = rng.normal(size=(K, d)) * 0.01, np.zeros(K)
    flops = 4.0 * n * d * K
    inputs = {"uint8 (x_scale 1/255)": (X8, 1 / 255), "float32 C": ((X8 / np.float32(255)).astype(np.float32), 1.0)}
    inputs["float32 F"] = (np.asfortranarray(inputs["float32 C"][0]), 1.0)
    inputs["float64 C"] = (inputs["float32 C"][0].astype(np.float64), 1.0)
    check = reference.logistic_loss_gradient(X8[:2000], y[:2000], None, coef, b, x_scale=1 / 255)
    for name, (X, scale) in inputs.items():
        head = np.array(X[:2000], order="K")  # its first rows, in X's own order
        loss, err = relative_errors(ops.logistic_loss_gradient(head, y[:2000], None, coef, b, x_scale=scale), check)
        assert loss < 1e-6 and err < 1e-5, f"{name}: loss error {loss:.1e}, gradient error {err:.1e}"
    print(f"one pass, n={n} d={d} K={K}: {flops / 1e9:.2f} GFLOP; medians of {repeats} (indicative on a shared machine)")
    for threads in (1, 2):
        csoftmax.set_num_threads(threads)
        peak32 = _core.peak_fma_flops(threads)[0]
        for name, (X, scale) in inputs.items():
            seconds, cpu = pass_seconds(X, y, coef, b, scale, repeats)
            rate = flops / seconds
            print(f"  {threads} thread(s)  {name:22s} {seconds * 1e3:7.1f} ms (CPU {cpu * 1e3:6.1f} ms)  "
                  f"{rate / 1e9:6.1f} GFLOP/s  {100 * rate / peak32:5.1f}% of fp32 FMA peak, "
                  f"{200 * rate / peak32:5.1f}% of fp64")
    csoftmax.set_num_threads(0)


def fit_near_optimum(X8, y, C=1.0, iterations=300):
    from scipy.optimize import minimize

    n, d = X8.shape
    K = 10

    def objective(theta):
        coef, b = theta[: K * d].reshape(K, d), theta[K * d :]
        loss, grad, grad_b = ops.logistic_loss_gradient(X8, y, None, coef, b, x_scale=1 / 255)
        f = loss / n + (coef**2).sum() / (2 * C * n)
        return f, np.concatenate([(grad + coef / C).ravel(), grad_b]) / n

    result = minimize(objective, np.zeros(K * d + K), jac=True, method="L-BFGS-B",
                      options={"maxiter": iterations, "maxls": 50, "gtol": 1e-8})
    print(f"L-BFGS-B: {result.nit} iterations, objective {result.fun:.8f}")
    return result.x[: K * d].reshape(K, d), result.x[K * d :]


def float32_logits_loss_gradient(X32, y, coef, b):
    """The multinomial loss and gradient from float32 logits (float32 X . float32 coef), float64 after."""
    Z = (X32 @ coef.astype(np.float32).T).astype(np.float64) + b
    lse = reference.logsumexp(Z)
    rows = np.arange(len(y))
    G = np.exp(Z - lse[:, None])
    G[rows, y] -= 1
    return float((lse - Z[rows, y]).sum()), G.T @ X32.astype(np.float64)


def precision(X8, y, iterations):
    coef, b = fit_near_optimum(X8, y, iterations=iterations)
    X32 = (X8 / np.float32(255)).astype(np.float32)
    ref = reference.logistic_loss_gradient(X32, y, None, coef, b)
    for name, got in [("kernel, float64 logits", ops.logistic_loss_gradient(X32, y, None, coef, b)),
                      ("float32 logits (NumPy sgemm)", float32_logits_loss_gradient(X32, y, coef, b))]:
        loss, grad = relative_errors(got, ref)
        print(f"  {name:30s} loss sum off by {loss:.1e} relative, gradient by {grad:.1e} of its largest entry")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", action="store_true", help="compare float32 and float64 logits instead")
    parser.add_argument("--iterations", type=int, default=300, help="L-BFGS-B iterations for --precision")
    args = parser.parse_args()
    X8, y = fashion_mnist(args.data_dir)
    if args.precision:
        precision(X8, y, args.iterations)
    else:
        timings(X8, y, args.repeats)


if __name__ == "__main__":
    main()
