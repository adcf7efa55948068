"""Full PET: one model per pattern, their ensemble, iPET and distillation.

After Schick & Schütze (2021): each pattern's MLM is trained on the labeled
examples; their label distributions are averaged (optionally weighted by each
pattern's validation accuracy) into soft labels for the unlabeled text; a plain
classifier learns from those (distillation). iPET repeats the per-pattern
training for some generations, each time adding the ensemble's most confident
pseudo-labels, balanced per class, to the labeled set.
"""
import numpy as np

from pet_keras.data import Example


def ensemble_proba(probs, weights=None):
    """The weighted mean of several (examples, labels) probability arrays."""
    probs = np.asarray(probs, dtype='float64')
    if probs.ndim != 3:
        raise ValueError('expected a list of (examples, labels) arrays, got shape %s' % (probs.shape,))
    weights = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype='float64')
    if weights.shape != (len(probs),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError('need one non-negative weight per model (not all zero), got %s' % (weights,))
    return np.tensordot(weights / weights.sum(), probs, axes=1)


def soften(probs, temperature=1.0):
    """Sharpen (T < 1) or flatten (T > 1) distributions: p^(1/T), renormalised.
    Equal to a softmax of the log-probabilities divided by T."""
    if temperature <= 0:
        raise ValueError('temperature must be positive, got %r' % temperature)
    logits = np.log(np.clip(probs, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def accuracy(probs, examples, labels):
    """Share of ``examples`` whose label is the argmax of ``probs``."""
    truth = np.array([labels.index(e.label) for e in examples])
    return float(np.mean(np.asarray(probs).argmax(1) == truth))


def confident_examples(examples, probs, labels, per_class):
    """iPET's next training examples: for each label, the ``per_class``
    examples the ensemble assigns to it with the highest probability, labeled
    with it. Fewer when the ensemble predicts a label for fewer examples."""
    probs = np.asarray(probs)
    predicted = probs.argmax(1)
    chosen = []
    for k, label in enumerate(labels):
        candidates = np.flatnonzero(predicted == k)
        best = candidates[np.argsort(-probs[candidates, k], kind='stable')[:per_class]]
        chosen.extend(Example(examples[i].fields, label, examples[i].source) for i in sorted(best))
    return chosen
