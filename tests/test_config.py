"""TaskSpec and RunConfig (pet_keras.config): flags become them once, JSON round-trips them
checked, and ``runner.run`` runs a task built in Python as the scripts run theirs."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import dataclasses
import json

import pytest

from pet_keras import budget, cli, runner
from pet_keras.config import RunConfig, TaskSpec
from pet_keras.data import Dataset, Example
from pet_keras.presets import SENTIMENT_PATTERNS

WORDS = {'positive': ['很'], 'negative': ['不']}


def examples(n, offset=0):
    return [
        Example({'text': '感觉%s好' % ('很' if i % 2 else '不')}, 'positive' if i % 2 else 'negative', 'row %d' % i)
        for i in range(offset, offset + n)
    ]


def test_flags_become_a_run_config():
    args = cli.script_parser('test', SENTIMENT_PATTERNS, 'P1', 'data').parse_args(
        ['--lr', '1e-4', '--patience', '0', '--mode', 'semi-supervised', '--seed', '3', '--slot-loss', 'labels']
    )
    config = RunConfig.from_flags(args, out='runs/default')
    assert (config.learning_rate, config.patience, config.mode, config.seed) == (1e-4, None, 'semi-supervised', 3)
    assert config.fold_patience == budget.FOLD_PATIENCE  # the folds' own, not --patience
    never = cli.script_parser('test', SENTIMENT_PATTERNS, 'P1', 'data').parse_args(['--fold-patience', '0'])
    assert (RunConfig.from_flags(never).fold_patience, RunConfig.from_flags(never).patience) == (None, 5)
    assert config.slot_loss == 'labels'
    assert config.out == 'runs/default'  # the flag was not given: the script's default
    given = cli.script_parser('test', SENTIMENT_PATTERNS, 'P1', 'data').parse_args(['--out', 'mine'])
    assert RunConfig.from_flags(given, out='runs/default').out == 'mine'


def test_flags_become_a_task_spec():
    args = cli.script_parser('test', SENTIMENT_PATTERNS, 'P1', 'data').parse_args(
        ['--windows', '--maxlen', '64', '--no-valid', '--labeled-fraction', '0.5', '--aggregation', 'max']
    )
    task = TaskSpec.from_flags(args, 'sentiment', '____满意{text}', WORDS, examples(4), examples(2), examples(2))
    assert (task.windows, task.maxlen, task.valid, task.labeled_fraction) == (True, 64, None, 0.5)
    assert task.verbalizer().aggregation == 'max'


def test_run_config_json_round_trip_is_checked():
    config = RunConfig(mode='few-shot', steps=300, learning_rate=3e-4, out='runs/x')
    assert RunConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ValueError, match='unknown setting stpes'):
        RunConfig.from_json({'stpes': 3})
    with pytest.raises(ValueError, match='steps is "300"; expected int'):
        RunConfig.from_json({'steps': '300'})
    with pytest.raises(ValueError, match='patience is true; expected int or null'):
        RunConfig.from_json({'patience': True})
    with pytest.raises(ValueError, match='mode must be one of'):
        RunConfig(mode='fewshot')
    with pytest.raises(ValueError, match='fold_patience must be a whole number >= 1'):
        RunConfig(fold_patience=0)
    with pytest.raises(ValueError, match='--steps 0: --mode few-shot trains'):
        RunConfig(steps=0)


def test_task_spec_takes_lists_and_refuses_bad_words_at_once():
    task = TaskSpec('t', '____满意。{text}', WORDS, examples(4), examples(2, 4), None)
    assert isinstance(task.train, Dataset) and isinstance(task.unlabeled, Dataset) and task.labels == list(WORDS)
    with pytest.raises(ValueError, match="^--label-words: label word '很' is given twice"):
        TaskSpec('t', '____{text}', {'positive': ['很'], 'negative': ['很']}, examples(4))
    assert json.loads(json.dumps(task.to_json()))['pattern'] == '____满意。{text}'


def test_run_trains_a_task_built_in_python(tiny_checkpoint, tmp_path, capsys):
    task = TaskSpec(
        't', '____满意{text}', WORDS, examples(16), examples(6, 16), examples(6, 22), maxlen=24, windows=True
    )
    config = RunConfig(
        steps=2, eval_every=2, batch_size=4, checkpoint_dir=str(tiny_checkpoint['dir']), out=str(tmp_path / 'run'),
        slot_loss='decoupled',
    )  # fmt: skip
    results = runner.run(task, config)
    assert results['best_step'] in (0, 2) and 0 <= results['test'] <= 1
    assert results['slot_loss'] == 'decoupled'
    assert 'train 16 (labeled 16, unlabeled 0), valid 6, test 6' in capsys.readouterr().out
    saved = json.loads((tmp_path / 'run' / 'results.json').read_text(encoding='utf-8'))
    assert saved['settings']['pattern'] == '____满意{text}' and saved['settings']['steps'] == 2
    assert RunConfig.from_run_folder(tmp_path / 'run') == config
    (tmp_path / 'other').mkdir()
    with pytest.raises(ValueError, match='not the results.json of a run'):
        RunConfig.from_run_folder(tmp_path / 'other')
    assert json.loads((tmp_path / 'run' / 'pvp.json').read_text(encoding='utf-8'))['windows'] is True
    with pytest.raises(FileExistsError, match='holds a finished run'):
        runner.run(task, config)
    mixed = TaskSpec('t', '____满意{text}', {'negative': '不', 'positive': '很好'}, examples(16), examples(6, 16))
    with pytest.raises(ValueError, match='must have one token length'):
        runner.run(mixed, dataclasses.replace(config, out=str(tmp_path / 'mixed')))
    assert not (tmp_path / 'mixed').exists()
