"""The run modes in one table, read by the flags, the start-up checks and training.

A mode says which training examples a run uses (the blog's four experiments and the
classifier baseline) and the learning rate the embedded model gets for it, chosen on
validation alone (results/lr_sweep.md: few-shot 3e-4 of 1e-4..1e-3, unsupervised 3e-4 of
1e-4..1e-3, semi-supervised with labeled share 0.5 1e-4 of 5e-5..5e-4, the classifier 5e-5
of 2e-5..1e-3). Any other checkpoint gets ``budget.REFERENCE_LEARNING_RATE``.
"""

from collections import namedtuple

# resumes: an interrupted run continues with --resume (the classifier's run starts again)
Mode = namedtuple('Mode', 'labeled unlabeled embedded_learning_rate resumes description')

CLASSIFIER = 'classifier'  # the fine-tuned [CLS] classifier baseline
MODES = {
    'zero-shot': Mode(False, False, None, False, 'no training'),
    'unsupervised': Mode(False, True, 3e-4, True, 'MLM on the unlabeled text, then zero-shot'),
    'few-shot': Mode(True, False, 3e-4, True, 'labeled only'),
    'semi-supervised': Mode(True, True, 1e-4, True, 'labeled + unlabeled'),
    CLASSIFIER: Mode(True, False, 5e-5, False, 'a [CLS] classifier fine-tuned on the labeled examples, the baseline'),
}
# the modes that run without validation data: zero-shot chooses nothing; pet_keras.crossval
# chooses the others' number of steps over their labeled examples
WITHOUT_VALIDATION = ('zero-shot', 'few-shot', 'semi-supervised', CLASSIFIER)
PET_MODES = tuple(name for name in MODES if name != CLASSIFIER)
# the modes the lexical expert joins (pet_keras.lexical): PET trained on labeled examples
WITH_LEXICAL_EXPERT = tuple(name for name, mode in MODES.items() if mode.labeled and name != CLASSIFIER)
TRAINED = tuple(name for name, mode in MODES.items() if mode.labeled or mode.unlabeled)


def check(name):
    if name not in MODES:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(MODES), name))
    return MODES[name]


def training_sets(name, labeled, unlabeled):
    """(labeled, unlabeled) training examples of mode ``name``: those it uses, [] for the other."""
    mode = check(name)
    return (labeled if mode.labeled else []), (unlabeled if mode.unlabeled else [])
