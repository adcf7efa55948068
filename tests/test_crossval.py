"""Few-shot without a validation set: folds, the choice of steps, fit_pet without validation,
and ``pet-keras train`` with no --valid."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
from collections import Counter

import numpy as np
import pytest

from pet_keras import commands
from pet_keras.crossval import capped_steps, choose_steps, cross_validate, fold_splits, stratified_folds
from pet_keras.data import Example
from test_inputs_read_only import checkpoint, jsonl, train_argv  # noqa: F401  (fixtures)


def examples(counts):
    return [Example({'text': '%s%d' % (label, i)}, label) for label, n in counts.items() for i in range(n)]


def test_folds_partition_the_examples_and_keep_each_labels_share():
    data = examples({'a': 12, 'b': 6, 'c': 3})
    folds = stratified_folds(data, 3, seed=1)
    assert sorted(id(e) for fold in folds for e in fold) == sorted(id(e) for e in data)
    for fold in folds:
        assert Counter(e.label for e in fold) == {'a': 4, 'b': 2, 'c': 1}
    assert [[e.fields for e in f] for f in folds] == [[e.fields for e in f] for f in stratified_folds(data, 3, 1)]
    assert [[e.fields for e in f] for f in folds] != [[e.fields for e in f] for f in stratified_folds(data, 3, 2)]
    for train, held_out in fold_splits(data, 3, seed=1):
        assert len(train) + len(held_out) == len(data) and not {id(e) for e in train} & {id(e) for e in held_out}


def test_folds_refuse_what_cannot_be_split():
    with pytest.raises(ValueError, match='at least 2 folds'):
        stratified_folds(examples({'a': 4}), 1)
    with pytest.raises(ValueError, match='3 labeled examples cannot make 4 folds'):
        stratified_folds(examples({'a': 3}), 4)


def test_the_chosen_step_has_the_best_mean_over_steps_every_fold_reached():
    curves = [
        {0: 0.5, 50: 0.7, 100: 0.8, 150: 0.9},  # went on: its step 150 is not shared
        {0: 0.5, 50: 0.8, 100: 0.6},
        {0: 0.5, 50: 0.6, 100: 0.7},
    ]
    choice = choose_steps(curves)
    assert choice['steps'] == 50 and choice['accuracy'] == pytest.approx(0.7)
    assert choice['fold_accuracy'] == [0.7, 0.8, 0.6]
    assert choice['stderr'] == pytest.approx(np.std([0.7, 0.8, 0.6], ddof=1) / np.sqrt(3))
    assert [p['step'] for p in choice['mean_curve']] == [0, 50, 100]
    assert choose_steps([{0: 0.5, 50: 0.5}, {0: 0.5, 50: 0.5}])['steps'] == 0  # a tie: the fewer steps


def test_a_fold_trains_no_further_than_every_earlier_fold_reached():
    stops = {1: 150, 2: 250, 3: 100, 4: 200}  # where each fold's patience would stop it
    caps = []

    def fit_fold(number, train, held_out, steps):
        caps.append(steps)
        last = min(stops[number], steps or stops[number])
        curve = [{'step': s, 'valid': 0.5 + s / 1000 if s < 100 else 0.5} for s in range(50, last + 1, 50)]
        return {'zero_shot': {'valid': 0.4}, 'evaluations': curve}

    choice = cross_validate(fit_fold, examples({'a': 8, 'b': 8}), k=4)
    assert caps == [None, 150, 150, 100]
    assert choice['steps'] == 50 and [p['step'] for p in choice['mean_curve']] == [0, 50, 100]
    assert capped_steps([150, 250, 100, 200]) == [150, 150, 100, 100]


def test_train_without_valid_chooses_steps_by_cross_validation(checkpoint, tmp_path, capsys):  # noqa: F811
    rows = [
        {'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('春天很好', '秋天不好', '花草很美', '石头不美')
    ]
    rows += [
        {'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('风雨很大', '山水不远', '日月很明', '星辰不亮')
    ]
    train = jsonl(tmp_path / 'data' / 'train.jsonl', rows)
    test = jsonl(tmp_path / 'data' / 'test.jsonl', rows[:4])
    out = tmp_path / 'run'
    argv = train_argv(
        checkpoint, {'train': train, 'test': test}, out, '--mode', 'few-shot', '--folds', '2', '--fold-patience', '7'
    )
    argv[argv.index('--steps') + 1] = '4'
    assert commands.main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    choice = results['cross_validation']
    assert choice['folds'] == 2 and choice['steps'] in (0, 2, 4) and len(choice['fold_accuracy']) == 2
    assert results['best_step'] == choice['steps'] and results['valid'] is None and results['test'] is not None
    assert len(results['evaluations']) == choice['steps'] // 2  # the whole chosen budget, no validation
    assert (
        'cross-validated accuracy %.4f ± %.4f (2 folds; %d steps on all 8 labeled examples)'
        % (choice['accuracy'], choice['stderr'], choice['steps'])
        in printed
    )
    for fold in (1, 2):
        fold_results = json.loads((out / 'cross-validation' / ('fold-%d' % fold) / 'results.json').read_text('utf-8'))
        assert fold_results['evaluations'][-1]['step'] == 4 and fold_results['test'] is None
        assert fold_results['budget']['patience'] == 7  # --fold-patience, not --patience (5), stops a fold
    # the same flags again (--overwrite): the same folds, the same choice
    assert commands.main(argv + ['--overwrite']) == 0
    again = json.loads((out / 'results.json').read_text(encoding='utf-8'))['cross_validation']
    assert again == choice


def test_unsupervised_runs_need_validation_and_say_so(checkpoint, tmp_path, capsys):  # noqa: F811
    train = jsonl(
        tmp_path / 'train.jsonl', [{'text': '春天很好', 'label': 'good'}, {'text': '秋天不好', 'label': 'bad'}]
    )
    argv = train_argv(checkpoint, {'train': train}, tmp_path / 'run', '--mode', 'unsupervised')
    with pytest.raises(SystemExit):
        commands.main(argv)
    assert '--mode unsupervised chooses its best step on validation data' in capsys.readouterr().err


def test_the_classifier_without_valid_is_cross_validated_too(checkpoint, tmp_path, capsys):  # noqa: F811
    rows = [
        {'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('春天很好', '秋天不好', '花草很美', '石头不美')
    ]
    train = jsonl(tmp_path / 'data' / 'train.jsonl', rows * 2)
    out = tmp_path / 'run'
    argv = train_argv(checkpoint, {'train': train}, out, '--mode', 'classifier', '--folds', '2')
    assert commands.main(argv) == 0
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    choice = results['cross_validation']
    assert choice['steps'] == 2 and [p['step'] for p in choice['mean_curve']] == [2]  # a random head is never kept
    assert results['best_step'] == 2 and results['valid'] is None and results['test'] is None
    assert (out / 'cross-validation' / 'fold-2' / 'classifier.json').is_file()

    # stopped after its folds (no results.json yet): the same command reads the finished folds back
    folds = [(out / 'cross-validation' / ('fold-%d' % n) / 'results.json').read_bytes() for n in (1, 2)]
    (out / 'results.json').unlink()
    capsys.readouterr()
    assert commands.main(argv) == 0
    printed = capsys.readouterr().out
    assert 'fold 1: the finished run' in printed and 'fold 2: the finished run' in printed
    assert [(out / 'cross-validation' / ('fold-%d' % n) / 'results.json').read_bytes() for n in (1, 2)] == folds
    assert json.loads((out / 'results.json').read_text(encoding='utf-8'))['cross_validation'] == choice


def test_the_sentiment_script_without_its_validation_file_cross_validates(checkpoint, tmp_path, monkeypatch, capsys):  # noqa: F811
    from test_reliability import run_in_process, sentiment_data

    data = sentiment_data(tmp_path / 'data', rows=(24, 6, 6))
    out = tmp_path / 'run'
    code, printed, err = run_in_process(
        monkeypatch,
        capsys,
        'sentiment.py',
        '--checkpoint-dir', str(checkpoint), '--data-dir', str(data), '--no-valid', '--folds', '2',
        '--labeled-fraction', '0.5', '--steps', '2', '--eval-every', '1', '--maxlen', '32', '--out', str(out),
    )  # fmt: skip
    assert code == 0, err
    assert 'valid left out' in printed and 'cross-validated accuracy' in printed
    assert json.loads((out / 'results.json').read_text(encoding='utf-8'))['cross_validation']['folds'] == 2


def test_fold_valid_cross_validates_over_train_and_dev(checkpoint, tmp_path, capsys):  # noqa: F811
    rows = [
        {'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('春天很好', '秋天不好', '花草很美', '石头不美')
    ]
    dev = [{'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('风雨很大', '山水不远')]
    train = jsonl(tmp_path / 'data' / 'train.jsonl', rows)
    valid = jsonl(tmp_path / 'data' / 'dev.jsonl', dev)
    out = tmp_path / 'run'
    argv = train_argv(checkpoint, {'train': train, 'valid': valid}, out, '--folds', '2', '--fold-valid', '--no-lexical')
    assert commands.main(argv) == 0
    printed = capsys.readouterr().out
    assert 'train 4 (labeled 6, unlabeled 0), valid 2, labeled' in printed
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['valid'] is None and results['settings']['fold_valid'] is True
    assert 'on all 6 labeled examples' in printed and results['cross_validation']['folds'] == 2
    held_out = [
        json.loads((out / 'cross-validation' / ('fold-%d' % n) / 'results.json').read_text('utf-8')) for n in (1, 2)
    ]
    assert all(r['evaluations'] for r in held_out)

    # nothing to fold in, or a mode without labeled examples: refused before any work
    for more, message in (
        ([], '--fold-valid adds the validation examples to the labeled ones, and there are none'),
        (['--valid', valid, '--mode', 'zero-shot'], '--mode zero-shot trains on no labeled examples'),
    ):
        argv = train_argv(checkpoint, {'train': train}, tmp_path / 'refused', '--fold-valid', *more)
        with pytest.raises(SystemExit):
            commands.main(argv)
        assert message in capsys.readouterr().err
    assert not (tmp_path / 'refused').exists()


def test_folds_0_trains_the_budget_without_cross_validation(checkpoint, tmp_path):  # noqa: F811
    rows = [
        {'text': t, 'label': 'good' if '很' in t else 'bad'} for t in ('春天很好', '秋天不好', '花草很美', '石头不美')
    ]
    train = jsonl(tmp_path / 'data' / 'train.jsonl', rows)
    out = tmp_path / 'run'
    argv = train_argv(checkpoint, {'train': train}, out, '--mode', 'few-shot', '--folds', '0')
    assert commands.main(argv) == 0
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['best_step'] == 2 and results['valid'] is None and 'cross_validation' not in results
    assert not (out / 'cross-validation').exists()


def test_one_fold_is_a_flag_error(capsys):
    with pytest.raises(SystemExit) as stop:
        commands.main(['train', '--folds', '1'])
    assert stop.value.code == 2 and 'must be 0 (no cross-validation) or at least 2, got 1' in capsys.readouterr().err
