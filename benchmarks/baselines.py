"""pet_keras' scoring with its fast paths switched off, for speed comparisons
(benchmarks/speed.py), built from the library's public layers and models:

- ``full_scoring_model``: ``MaskedLM.scoring_model``'s inputs and output, read
  from ``MaskedLM.full_model``'s vocabulary logits at every position (the
  reference's computation);
- ``file_order_batches``: ``scoring.cloze_batches`` in file order (no length
  bucketing);
- ``ComparisonScorer``: a ``Scorer`` whose ``bucket`` and
  ``label_tokens_only`` switches select them. It gives the same
  probabilities as ``Scorer``.
"""

import numpy as np

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)
from pet_keras.compat import keras
from pet_keras.layers import GatherPositions, LabelColumns
from pet_keras.scoring import Scorer, cloze_inputs


def full_scoring_model(mlm, label_token_ids):
    """``mlm.scoring_model``'s inputs and output, read from ``mlm.full_model``'s
    vocabulary logits at every position (the reference's computation)."""
    label_token_ids = np.asarray(label_token_ids)
    slots = keras.layers.Input(shape=(label_token_ids.shape[1],), dtype='int32', name='Input-Slots')
    slot_logits = GatherPositions(name='Gather-Slots')([mlm.full_model.output, slots])
    scores = LabelColumns(label_token_ids, dtype='float32', name='Label-Columns')(slot_logits)
    return keras.Model(mlm.inputs + [slots], scores, name='pet_scoring_full_vocabulary')


def file_order_batches(pvp, examples, batch_size):
    """``cloze_batches`` of examples in file order: batches of consecutive
    examples, each padded to its longest."""
    clozes = [[pvp.encode(e, length) for e in examples] for length in pvp.slot_lengths]
    order = np.arange(len(examples))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, cloze_inputs(clozes, idx)


class ComparisonScorer(Scorer):
    """``Scorer`` with switches: ``bucket=False`` batches in file order;
    ``label_tokens_only=False`` reads the label logits from the vocabulary
    logits at every position (``full_scoring_model``; words of one length
    only, words of several lengths are scored as ``Scorer`` does). The same
    probabilities, for speed comparisons."""

    def __init__(self, mlm, pvp, batch_size=64, bucket=True, label_tokens_only=True, **kwargs):
        self.bucket = bucket
        self.label_tokens_only = label_tokens_only
        super().__init__(mlm, pvp, batch_size=batch_size, **kwargs)

    def word_scores(self, mlm):
        if self.label_tokens_only or len(self.pvp.slot_lengths) > 1:
            return super().word_scores(mlm)
        scoring = full_scoring_model(mlm, self.pvp.label_token_ids)
        return scoring.inputs, scoring.output

    def batches(self, examples):
        if self.bucket:
            return super().batches(examples)
        return file_order_batches(self.pvp, examples, self.batch_size)
