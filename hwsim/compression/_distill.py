"""Knowledge distillation loss (Hinton, Vinyals, Dean 2015, "Distilling the knowledge in a neural network").

For student logits ``z``, teacher logits ``v``, temperature ``T`` and hard labels ``y``:

    L = alpha * T**2 * KL(softmax(v/T) || softmax(z/T)) + (1 - alpha) * CE(onehot(y), softmax(z))

averaged over the batch (KL = the soft cross-entropy minus the teacher's entropy: the same
gradient, and 0 when the student matches the teacher). The ``T**2`` factor keeps the soft-target
gradient magnitude independent of ``T`` (paper, section 2). The returned gradient is that of the *summed* loss
(the layers' convention, as ``SoftmaxCrossEntropy.backward``), per example:
``alpha * T * (softmax(z/T) - softmax(v/T)) + (1 - alpha) * (softmax(z) - onehot(y))``.
`distill` trains a student on it.
"""
from __future__ import annotations

import numpy as np


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def distillation_loss(student_logits: np.ndarray, teacher_logits: np.ndarray, y: np.ndarray,
                      *, temperature: float = 4.0, alpha: float = 0.9
                      ) -> tuple[float, np.ndarray]:
    """Return ``(mean loss, d(summed loss)/d student_logits)``; logits (N, classes), ``y`` int (N,)."""
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    z = np.asarray(student_logits, dtype=np.float64)
    v = np.asarray(teacher_logits, dtype=np.float64)
    if z.shape != v.shape or z.ndim != 2:
        raise ValueError(f"student and teacher logits must both be (N, classes), got {z.shape} and {v.shape}")
    n, t = z.shape[0], float(temperature)
    logp_teacher = _log_softmax(v / t)
    p_teacher = np.exp(logp_teacher)
    logq_t = _log_softmax(z / t)
    logq = _log_softmax(z)
    onehot = np.zeros_like(z)
    onehot[np.arange(n), np.asarray(y)] = 1.0
    soft = (p_teacher * (logp_teacher - logq_t)).sum() / n
    hard = -(onehot * logq).sum() / n
    loss = alpha * t * t * soft + (1 - alpha) * hard
    grad = alpha * t * (np.exp(logq_t) - p_teacher) + (1 - alpha) * (np.exp(logq) - onehot)
    return float(loss), grad.astype(np.asarray(student_logits).dtype)


def distill(student, teacher, data, *, epochs: int, batch: int, lr: float = 1e-3, optimizer: str = "adam",
            temperature: float = 4.0, alpha: float = 0.9, seed: int = 0) -> dict:
    """Train ``student`` on ``teacher``'s softened outputs (`distillation_loss`) over ``data``'s
    training set; both models keep their precision policies. Batch order of epoch ``e``:
    ``default_rng([seed, e]).permutation``. Returns ``{"train_loss": per epoch, "test_accuracy"}``.
    """
    from .._optim import make_optimizer
    from .._train import evaluate

    opt = make_optimizer(optimizer, student, lr=lr)
    X, y = np.asarray(data.X_train), np.asarray(data.y_train)
    losses, step = [], 0
    for epoch in range(epochs):
        perm = np.random.default_rng([seed, epoch]).permutation(len(X))
        total = 0.0
        for b in range(0, len(X), batch):
            idx = perm[b:b + batch]
            xb = X[idx]
            teacher_logits = teacher.forward(xb, training=False)
            student.set_step(step)
            logits = student.forward(xb, training=True)
            loss, grad = distillation_loss(logits, teacher_logits, y[idx], temperature=temperature,
                                           alpha=alpha)
            student.backward(grad)
            opt.step()
            total += loss * len(idx)
            step += 1
        losses.append(total / len(X))
    return {"train_loss": losses, "test_accuracy": evaluate(student, data.X_test, data.y_test)["accuracy"]}
