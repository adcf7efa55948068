"""The lexical baseline (benchmarks/lexical.py): chosen on validation, scored on test, whole texts.
Needs scikit-learn (benchmarks/requirements.txt); skipped without it."""

import sys
from pathlib import Path

import pytest

pytest.importorskip(
    'sklearn', reason='the lexical baseline needs scikit-learn (pip install -r benchmarks/requirements.txt)'
)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'benchmarks'))
from lexical import C_GRID, NGRAMS, lexical_baseline  # noqa: E402

from tiny import ex  # noqa: E402


def task(n, offset=0):
    """Positive texts carry 好 somewhere late in a long text (past any 128-token cut), negative 坏."""
    filler = '今天我们去了那个地方看看' * 15
    return [
        ex(filler + ('好' if i % 2 else '坏') + '的', 'pos' if i % 2 else 'neg', 'x:%d' % (i + offset))
        for i in range(n)
    ]


def test_the_choice_is_made_on_validation_and_reads_whole_texts():
    record = lexical_baseline(task(20), task(10, 100), task(10, 200))
    assert len(record['grid']) == len(NGRAMS) * len(C_GRID)
    best = max(record['grid'], key=lambda g: g['valid'])
    assert record['valid'] == pytest.approx(best['valid'], abs=1e-4) and record['valid'] == 1.0
    assert record['test'] == 1.0  # the label's character is ~180 characters into the text
    assert record['labeled'] == 20 and record['ngram_range'] in [list(n) for n in NGRAMS] and record['C'] in C_GRID


def test_without_test_examples_only_validation_is_reported():
    assert lexical_baseline(task(20), task(10, 100), [])['test'] is None


def test_without_validation_the_choice_is_cross_validated_on_the_labeled_rows():
    record = lexical_baseline(task(20), None, task(10, 200), folds=4)
    assert record['chosen_by'] == '4-fold cross-validation' and record['valid'] == 1.0 and record['test'] == 1.0
    assert max(g['valid'] for g in record['grid']) == record['valid']
