"""The command-line scripts: --help, argument errors, and smoke runs on the
shared datasets with a tiny random Google-format checkpoint."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pet_keras.presets import NEWS_PATTERNS, SENTIMENT_PATTERNS
from pet_keras.modes import PET_MODES
from tiny import make_mlm

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason='../shared not present: %s' % SHARED)


def run_script(name, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(
        [sys.executable, str(REPO / 'scripts' / name), *map(str, args)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def flat(text):
    """Help text with argparse's line wrapping undone."""
    return ' '.join(re.sub(r'-\n\s+', '-', text).split())


@pytest.mark.parametrize('script, presets', [('sentiment.py', SENTIMENT_PATTERNS), ('news.py', NEWS_PATTERNS)])
def test_help_lists_modes_and_presets(script, presets):
    result = run_script(script, '--help')
    assert result.returncode == 0, result.stderr
    text = flat(result.stdout)
    assert '--mode {%s,classifier}' % ','.join(PET_MODES) in text
    for mode in ('zero-shot', 'unsupervised', 'few-shot', 'semi-supervised', 'classifier'):
        assert '%s:' % mode in text, mode  # each mode is explained
    assert set(presets) == ({'P1', 'P2', 'P3', 'P4', 'P5'} if script == 'sentiment.py' else {'N1', 'N2'})
    for name, template in presets.items():
        assert '%s = %s' % (name, template) in text, name
    for flag in (
        '--data-dir',
        '--checkpoint-dir',
        '--pattern',
        '--steps',
        '--eval-every',
        '--patience',
        '--lr',
        '--out',
        '--seed',
        '--maxlen',
    ):
        assert flag in text


def test_bad_mode_is_refused():
    result = run_script('sentiment.py', '--mode', 'supervised')
    assert result.returncode == 2
    assert 'invalid choice' in result.stderr and 'semi-supervised' in result.stderr


def test_news_requires_data_dir():
    result = run_script('news.py', '--mode', 'zero-shot')
    assert result.returncode == 2
    assert '--data-dir is required' in result.stderr


def test_missing_checkpoint_is_named(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    for split in ('train', 'valid', 'test'):
        (data / ('sentiment.%s.data' % split)).write_text('很好\t1\n不好\t0\n', encoding='utf-8')
    result = run_script(
        'sentiment.py', '--data-dir', data, '--checkpoint-dir', tmp_path / 'nowhere', '--mode', 'zero-shot'
    )
    assert result.returncode != 0
    assert str(tmp_path / 'nowhere' / 'bert_config.json') in result.stderr


@pytest.fixture(scope='module')
def chinese_checkpoint(tmp_path_factory):
    """A tiny random BERT (2 layers, hidden 32) over the standard 21,128-token
    Chinese vocabulary, written as a Google-format folder."""
    vocab = SHARED / 'reference' / 'chinese_bert_vocab.txt'
    if not vocab.is_file():
        pytest.skip('%s not present' % vocab)
    folder = tmp_path_factory.mktemp('chinese_tiny')
    n = sum(1 for _ in open(vocab, encoding='utf-8'))
    assert n == 21128
    mlm = make_mlm(n, folder / 'build', hidden=32, layers=2, max_position=64)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, str(vocab))
    for name in ('bert_config.json', 'vocab.txt', 'bert_model.ckpt.index'):
        assert (folder / 'ckpt' / name).is_file()
    return folder / 'ckpt'


def check_run_folder(out, template):
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    for key in ('settings', 'pattern', 'zero_shot', 'evaluations', 'best_step', 'valid', 'test', 'wall_seconds'):
        assert key in results, key
    assert results['pattern']['pattern'] == template
    for split in ('valid', 'test'):
        assert 0 <= results['zero_shot'][split] <= 1
    for name in ('bert_config.json', 'bert_model.ckpt.index', 'vocab.txt', 'pvp.json'):
        assert (out / name).is_file(), name
    return results


@needs_shared
def test_sentiment_few_shot_smoke(chinese_checkpoint, tmp_path):
    out = tmp_path / 'sentiment'
    result = run_script(
        'sentiment.py',
        '--checkpoint-dir',
        chinese_checkpoint,
        '--data-dir',
        SHARED / 'datasets' / 'sentiment',
        '--mode',
        'few-shot',
        '--steps',
        2,
        '--eval-every',
        2,
        '--maxlen',
        32,
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'labeled 168' in result.stdout and 'valid 2111, test 2111' in result.stdout
    results = check_run_folder(out, SENTIMENT_PATTERNS['P1'])
    assert results['settings']['mode'] == 'few-shot' and results['settings']['maxlen'] == 32
    assert len(results['evaluations']) == 1
    evaluation = results['evaluations'][0]
    assert evaluation['step'] == 2 and 0 <= evaluation['valid'] <= 1 and evaluation['loss'] > 0
    assert results['best_step'] in (0, 2)
    assert results['valid'] == max(results['zero_shot']['valid'], evaluation['valid'])
    assert (out / 'best_weights.h5').is_file()
    assert json.loads((out / 'pvp.json').read_text(encoding='utf-8'))['label_words'] == {
        'negative': ['不'],
        'positive': ['很'],
    }


@needs_shared
def test_sentiment_mixed_precision_smoke(chinese_checkpoint, tmp_path):
    out = tmp_path / 'sentiment_bf16'
    result = run_script(
        'sentiment.py',
        '--checkpoint-dir',
        chinese_checkpoint,
        '--data-dir',
        SHARED / 'datasets' / 'sentiment',
        '--mode',
        'few-shot',
        '--steps',
        2,
        '--eval-every',
        2,
        '--maxlen',
        32,
        '--mixed-precision',
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = check_run_folder(out, SENTIMENT_PATTERNS['P1'])
    assert results['settings']['mixed_precision'] is True
    assert results['evaluations'][0]['loss'] > 0 and (out / 'best_weights.h5').is_file()


@needs_shared
def test_news_zero_shot_smoke(chinese_checkpoint, tmp_path):
    out = tmp_path / 'news'
    result = run_script(
        'news.py',
        '--checkpoint-dir',
        chinese_checkpoint,
        '--data-dir',
        SHARED / 'datasets' / 'tnews',
        '--mode',
        'zero-shot',
        '--maxlen',
        32,
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(labeled 0, unlabeled 0), valid 1098, test 2010' in result.stdout
    results = check_run_folder(out, NEWS_PATTERNS['N1'])
    assert results['evaluations'] == [] and results['best_step'] == 0
    assert results['valid'] == results['zero_shot']['valid'] and results['test'] == results['zero_shot']['test']
    words = json.loads((out / 'pvp.json').read_text(encoding='utf-8'))['label_words']
    assert len(words) == 15 and all(len(w[0]) == 2 for w in words.values())
    assert not (out / 'best_weights.h5').exists()
