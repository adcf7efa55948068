"""The training budget and the default learning rates, for PET and the classifier alike.

A run trains for at most ``steps`` optimizer steps, evaluates validation
accuracy every ``eval_every`` steps, stops after ``patience`` evaluations
without a better one (step 0, the untrained model, counts: a run that never
beats it stops after ``patience`` evaluations), and keeps the best weights. Steps, not epochs: a
few-shot set is a handful of batches an epoch and a semi-supervised epoch
hundreds, so an epoch budget under-trains the one and over-spends on the other.

The learning rates were chosen on validation accuracy alone (results/README.md,
"Learning rate") for the embedded model, per mode (``pet_keras.modes``); any other
checkpoint gets the reference scripts' fine-tuning rate for BERT-base-size models.
"""

import math
from collections import namedtuple
from pathlib import Path

from pet_keras import modes

STEPS = 2000  # a cap; patience ends a run sooner once its validation curve has flattened
EVAL_EVERY = 50
PATIENCE = 5  # evaluations, i.e. 250 steps without a better validation accuracy
# the folds of a run without validation (crossval); 3 cost a quarter less on sentiment with the same
# choice, but stopped IFLYTEK's slowly rising folds up to 300 steps before their best (results/README.md,
# "Few-shot without validation: its cost")
FOLD_PATIENCE = PATIENCE
# how PET's slot trains (layers.PetLoss): the gold word's full-vocabulary masked-LM loss (the
# reference's), cross-entropy over the labels' words, or ADAPET's decoupled label loss
SLOT_LOSSES = ('mlm', 'labels', 'decoupled')
SLOT_LOSS = 'mlm'

Budget = namedtuple('Budget', 'steps eval_every patience learning_rate')  # one run's budget, as fit_pet takes it

EMBEDDED_CHECKPOINT = Path(__file__).resolve().parents[1] / 'checkpoints' / 'chinese_bert_mini_pet'
REFERENCE_LEARNING_RATE = 1e-5
# semi-supervised: the share of the training stream the labeled examples make (None: their natural
# share, as the reference). 0.5 was chosen on validation (results/lr_sweep.md): 73.05 against 60.26
LABELED_SHARE = 0.5


def is_embedded(checkpoint_path):
    """Whether ``checkpoint_path`` (a prefix such as .../bert_model.ckpt) is the embedded model's."""
    return checkpoint_path is not None and Path(checkpoint_path).resolve().parent == EMBEDDED_CHECKPOINT


def default_learning_rate(mode, checkpoint_path):
    """The learning rate a run of ``mode`` gets unless one is given: the rate
    tuned for the embedded model, or the reference's for any other checkpoint."""
    return modes.check(mode).embedded_learning_rate if is_embedded(checkpoint_path) else REFERENCE_LEARNING_RATE


def evaluations(steps, eval_every):
    """How many evaluations a budget of ``steps`` makes (the last may come up to
    eval_every - 1 steps after the budget)."""
    return math.ceil(steps / eval_every)


def check(steps, eval_every, patience, learning_rate=None):
    """A ValueError naming the first budget setting out of range. A learning rate
    that is a number must be finite and >= 0 (0 trains nothing, for tests)."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError('steps must be a whole number >= 0, got %r' % (steps,))
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError('eval_every must be a whole number >= 1, got %r' % (eval_every,))
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError('patience must be a whole number >= 1 (or None: no early stopping), got %r' % (patience,))
    if isinstance(learning_rate, (int, float)) and not (math.isfinite(learning_rate) and learning_rate >= 0):
        raise ValueError('learning_rate must be a finite number >= 0, got %r' % (learning_rate,))


def check_slot_loss(slot_loss, slot_lengths):
    """A ValueError unless ``slot_loss`` is one of ``SLOT_LOSSES`` and, for the label losses,
    the label words (of ``slot_lengths`` tokens) have one length: those compare the words in
    one cloze, and a word alone at its length would have no rival to learn from."""
    if slot_loss not in SLOT_LOSSES:
        raise ValueError('--slot-loss %s: expected one of %s' % (slot_loss, ', '.join(SLOT_LOSSES)))
    if slot_loss != 'mlm' and len(slot_lengths) > 1:
        raise ValueError(
            '--slot-loss %s compares the label words in one cloze, so they must have one token length (these '
            'have %s): give words of one length, or use --slot-loss mlm'
            % (slot_loss, ', '.join(map(str, slot_lengths)))
        )
