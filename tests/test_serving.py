"""Using a trained model: pet_keras.serving.load / export_saved_model and the
pet-keras console script (pet_keras.commands), on tiny run folders."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bert4keras.snippets import sequence_padding

from pet_keras.commands import main
from pet_keras.pattern import PVP
from pet_keras.scoring import Scorer
from pet_keras.serving import export_saved_model, load
from pet_keras.train import fit_pet
from tiny import ex, make_mlm, sharpened_mlm, write_vocab

REPO = Path(__file__).resolve().parents[1]
WORDS = {'positive': '很', 'negative': '不', 'neutral': '理'}
PAIR_WORDS = {'same': '是的', 'different': '不是'}  # a two-token slot
TEXTS = ['春夏花草风雨', '秋冬石木山水黑白', '我你他', '红黄蓝白黑东西南北早晚前后左右里外', '开关']
PAIRS = [{'a': '春夏花草', 'b': '秋冬'}, {'a': '我你他她们', 'b': '我你'}, {'a': '红', 'b': '黄蓝白黑东西南北'}]


@pytest.fixture(scope='module')
def run(tok, tmp_path_factory):
    """A run folder written by fit_pet (zero-shot, calibrated), and the model and PVP in memory."""
    folder = tmp_path_factory.mktemp('serving')
    tf.random.set_seed(4)
    mlm = sharpened_mlm(len(tok._token_dict), folder / 'init', dict_path=write_vocab(folder / 'vocab.txt'), seed=11)
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    valid = [ex(t, label, 'v:%d' % i) for i, (t, label) in enumerate(zip(TEXTS, ['positive', 'negative'] * 3), 1)]
    out = str(folder / 'run')
    fit_pet(mlm, pvp, None, valid, out_dir=out, verbose=0, calibrate=True)
    return {'dir': out, 'mlm': mlm, 'pvp': pvp}


@pytest.fixture(scope='module')
def pair_run(tok, tmp_path_factory):
    """A pair-pattern folder saved by hand (checkpoint + pvp.json, no results.json)."""
    folder = tmp_path_factory.mktemp('serving_pair')
    tf.random.set_seed(5)
    mlm = sharpened_mlm(len(tok._token_dict), folder / 'init', dict_path=write_vocab(folder / 'vocab.txt'), seed=12)
    pvp = PVP('{a}？____，{b}', PAIR_WORDS, tok, 32)
    out = str(folder / 'run')
    mlm.save_checkpoint(out, mlm.config, mlm.dict_path)
    pvp.save(os.path.join(out, 'pvp.json'))
    return {'dir': out, 'mlm': mlm, 'pvp': pvp}


def probabilities(predictions, labels):
    return np.array([[p['probabilities'][label] for label in labels] for p in predictions])


# ---------------------------------------------------------------- load(...).predict


def test_load_predicts_as_the_trained_model(run):
    predictor = load(run['dir'])
    assert predictor.labels == ['positive', 'negative', 'neutral'] and predictor.fields == ['text']
    assert predictor.scorer.calibrate is True  # as results.json recorded
    predictions = predictor.predict(TEXTS)
    probs = probabilities(predictions, predictor.labels)
    want = Scorer(run['mlm'], run['pvp'], calibrate=True).predict_proba([ex(t) for t in TEXTS], verbose=False)
    np.testing.assert_allclose(probs, want, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert [p['label'] for p in predictions] == [predictor.labels[k] for k in want.argmax(1)]
    # calibration can be turned off: the plain model's probabilities
    plain = load(run['dir'], calibrate=False).predict(TEXTS)
    np.testing.assert_allclose(
        probabilities(plain, predictor.labels),
        Scorer(run['mlm'], run['pvp']).predict_proba([ex(t) for t in TEXTS], verbose=False),
        atol=1e-5,
    )
    assert np.abs(probabilities(plain, predictor.labels) - probs).max() > 1e-3


def test_load_pair_pattern_takes_dicts(pair_run):
    predictor = load(pair_run['dir'])
    assert predictor.fields == ['a', 'b'] and predictor.scorer.calibrate is False  # no results.json
    probs = probabilities(predictor.predict(PAIRS), predictor.labels)
    want = Scorer(pair_run['mlm'], pair_run['pvp']).predict_proba([ex(None, **p) for p in PAIRS], verbose=False)
    np.testing.assert_allclose(probs, want, atol=1e-5)
    with pytest.raises(ValueError, match=r'input:1: the model reads fields a, b: pass a dict'):
        predictor.predict(['春夏'])
    with pytest.raises(ValueError, match=r'input:2: expected a string for field b'):
        predictor.predict([PAIRS[0], {'a': '春'}])
    with pytest.raises(TypeError, match=r'input:1: expected a string or a dict'):
        predictor.predict([3])


def test_load_refuses_what_is_not_a_run_folder(run, tmp_path):
    with pytest.raises(FileNotFoundError, match='no such folder'):
        load(str(tmp_path / 'missing'))
    checkpoint_only = tmp_path / 'checkpoint_only'
    shutil.copytree(run['dir'], checkpoint_only)
    os.remove(checkpoint_only / 'pvp.json')
    with pytest.raises(FileNotFoundError, match=r'not a pet_keras run folder, missing pvp.json'):
        load(str(checkpoint_only))
    (checkpoint_only / 'pvp.json').write_text('{"pattern": "____满意。{text}",\n "label_words": }', encoding='utf-8')
    with pytest.raises(ValueError, match=r'pvp.json:2: not valid JSON'):
        load(str(checkpoint_only))
    (checkpoint_only / 'pvp.json').write_text('{"pattern": "____满意。{text}"}', encoding='utf-8')
    with pytest.raises(ValueError, match=r'pvp.json: expected .*label_words'):
        load(str(checkpoint_only))


# ---------------------------------------------------------------- SavedModel


def serve(saved, pvp, items, pad_to=None):
    """The SavedModel's signature on items encoded with the PVP (as a server would)."""
    encoded = [pvp.encode(e) for e in items]
    length = pad_to or max(len(e.token_ids) for e in encoded)
    return saved.signatures['serving_default'](
        token_ids=tf.constant(sequence_padding([e.token_ids for e in encoded], length), tf.int32),
        segment_ids=tf.constant(sequence_padding([e.segment_ids for e in encoded], length), tf.int32),
    )


def test_saved_model_matches_the_keras_predictions(run, pair_run, tmp_path):
    for folder, items, inputs in (
        (run, [ex(t) for t in TEXTS], TEXTS),
        (pair_run, [ex(None, **p) for p in PAIRS], PAIRS),
    ):
        out = str(tmp_path / os.path.basename(os.path.dirname(folder['dir'])))
        assert export_saved_model(folder['dir'], out) == out
        for name in ('pvp.json', 'vocab.txt'):  # what a server needs to build the inputs
            with open(os.path.join(out, 'assets', name), 'rb') as a, open(os.path.join(folder['dir'], name), 'rb') as b:
                assert a.read() == b.read(), name
        predictor = load(folder['dir'])
        want = probabilities(predictor.predict(inputs), predictor.labels)
        saved = tf.saved_model.load(out)
        for pad_to in (None, 40):  # padding does not change the result
            result = serve(saved, folder['pvp'], items, pad_to)
            assert result['probabilities'].dtype == tf.float32
            np.testing.assert_allclose(result['probabilities'].numpy(), want, atol=1e-5)
            assert [s.decode() for s in result['label'].numpy()] == [p['label'] for p in predictor.predict(inputs)]
    # the calibrated export differs from an uncalibrated one of the same folder
    plain = tf.saved_model.load(export_saved_model(run['dir'], str(tmp_path / 'plain'), calibrate=False))
    np.testing.assert_allclose(
        serve(plain, run['pvp'], [ex(t) for t in TEXTS])['probabilities'].numpy(),
        probabilities(load(run['dir'], calibrate=False).predict(TEXTS), WORDS),
        atol=1e-5,
    )


def test_saved_model_refuses_rows_without_the_slot(run, tmp_path):
    saved = tf.saved_model.load(export_saved_model(run['dir'], str(tmp_path / 'export')))
    tok = run['pvp'].tokenizer
    good = run['pvp'].encode(ex('春夏'))
    no_slot = tok.encode('春夏满意')[0]
    ids = sequence_padding([good.token_ids, no_slot]).astype('int32')
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'1 consecutive \[MASK\] tokens'):
        saved.signatures['serving_default'](token_ids=tf.constant(ids), segment_ids=tf.zeros_like(ids))


# ---------------------------------------------------------------- pet-keras


def read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def test_console_predict_reads_text_jsonl_and_tsv(run, pair_run, tmp_path):
    want = load(run['dir']).predict(TEXTS)
    text = tmp_path / 'texts.txt'
    text.write_text('\n'.join(TEXTS[:2] + ['   '] + TEXTS[2:]) + '\n', encoding='utf-8')
    jsonl = tmp_path / 'texts.jsonl'
    jsonl.write_text(
        '\n'.join(
            json.dumps({'text': t, 'id': i, 'label': 'gold', 'note': [i]}, ensure_ascii=False)
            for i, t in enumerate(TEXTS)
        ),
        encoding='utf-8',
    )
    for path, fmt in ((text, None), (jsonl, None), (text, 'tsv')):
        out = tmp_path / ('out-%s-%s.jsonl' % (path.name, fmt))
        args = ['predict', '--model-dir', run['dir'], '--input', str(path), '--output', str(out), '--batch-size', '2']
        assert main(args + (['--format', fmt] if fmt else [])) == 0
        rows = read_jsonl(out)
        assert [r['text'] for r in rows] == TEXTS  # the blank line is skipped
        kept = {'id', 'label', 'note'} if path == jsonl else set()  # every input key is copied
        assert all(set(r) == {'text', 'prediction', 'probabilities'} | kept for r in rows)
        if path == jsonl:  # the gold label stays beside the prediction
            assert [(r['id'], r['label'], r['note']) for r in rows] == [(i, 'gold', [i]) for i in range(len(TEXTS))]
        assert [r['prediction'] for r in rows] == [p['label'] for p in want]
        np.testing.assert_allclose(probabilities(rows, WORDS), probabilities(want, WORDS), atol=1e-5)
    # pairs from TSV, calibration switched on from the command line
    tsv = tmp_path / 'pairs.tsv'
    tsv.write_text(''.join('%s\t%s\n' % (p['a'], p['b']) for p in PAIRS), encoding='utf-8')
    out = tmp_path / 'pairs.jsonl'
    assert (
        main(['predict', '--model-dir', pair_run['dir'], '--input', str(tsv), '--output', str(out), '--calibrate']) == 0
    )
    rows = read_jsonl(out)
    assert [{'a': r['a'], 'b': r['b']} for r in rows] == PAIRS
    np.testing.assert_allclose(
        probabilities(rows, PAIR_WORDS),
        probabilities(load(pair_run['dir'], calibrate=True).predict(PAIRS), PAIR_WORDS),
        atol=1e-5,
    )


def test_console_predict_to_stdout_keeps_progress_off_stdout(run, tmp_path, capsys):
    text = tmp_path / 'texts.txt'
    text.write_text('\n'.join(TEXTS), encoding='utf-8')
    assert main(['predict', '--model-dir', run['dir'], '--input', str(text)]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]  # nothing else on stdout
    assert [r['text'] for r in rows] == TEXTS
    assert '5 predictions' in captured.err and 'example' in captured.err  # the summary and the progress bar


def console_error(capsys, argv):
    """The one line ``pet-keras`` ends with on a user error (status 2)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and 'Traceback' not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    'name, content, fmt, error',
    [
        ('bad.jsonl', '{"text": "春夏"}\n{"text": "秋冬"\n', None, r'bad.jsonl:2: malformed JSON'),
        ('bad.jsonl', '{"text": "春夏"}\n\n{"sentence": "秋冬"}\n', None, r'bad.jsonl:3: no text field'),
        ('bad.txt', b'\xe6\x98\xa5\n\xb4\xba\n', None, r'bad.txt:2: not UTF-8'),
        (
            'bad.jsonl',
            '{"text": "春夏"}\n{"text": "秋冬", "prediction": 1}\n',
            None,
            r"bad.jsonl:2: .*key 'prediction'",
        ),
    ],
)
def test_console_predict_bad_input_names_file_and_line(run, tmp_path, capsys, name, content, fmt, error):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else lambda c: path.write_text(c, encoding='utf-8'))(content)
    line = console_error(
        capsys, ['predict', '--model-dir', run['dir'], '--input', str(path)] + (['--format', fmt] if fmt else [])
    )
    assert re.match('error: .*' + error, line), line


def test_console_predict_pair_input_errors(pair_run, tmp_path, capsys):
    tsv = tmp_path / 'pairs.tsv'
    tsv.write_text('春夏\t秋冬\n春夏秋冬\n', encoding='utf-8')
    assert (
        console_error(capsys, ['predict', '--model-dir', pair_run['dir'], '--input', str(tsv)])
        == 'error: %s:2: expected "a<TAB>b", found no tab' % tsv
    )
    assert re.match(
        r'error: .*the model reads fields a, b; .*use --format jsonl or tsv',
        console_error(capsys, ['predict', '--model-dir', pair_run['dir'], '--input', str(tsv), '--format', 'text']),
    )
    assert console_error(
        capsys, ['predict', '--model-dir', pair_run['dir'], '--input', str(tsv), '--batch-size', '0']
    ).startswith('error: argument --batch-size: must be a whole')


def test_console_refuses_a_folder_without_pvp_json(run, tmp_path, capsys):
    folder = tmp_path / 'no_pvp'
    shutil.copytree(run['dir'], folder)
    os.remove(folder / 'pvp.json')
    assert re.match(
        r'error: .*missing pvp.json',
        console_error(capsys, ['export', '--model-dir', str(folder), '--out', str(tmp_path / 'export')]),
    )


def test_console_export_refuses_a_non_empty_target_unless_overwrite(run, tmp_path, capsys):
    out = tmp_path / 'export'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    assert (
        console_error(capsys, ['export', '--model-dir', run['dir'], '--out', str(out)])
        == 'error: %s: exists and is not empty (pet-keras export --overwrite replaces it)' % out
    )
    assert os.listdir(out) == ['notes.txt']
    assert main(['export', '--model-dir', run['dir'], '--out', str(out), '--overwrite']) == 0
    assert 'notes.txt' not in os.listdir(out) and os.path.isfile(out / 'saved_model.pb')


def test_console_export_writes_a_loadable_saved_model(run, tmp_path):
    out = tmp_path / 'export'
    assert main(['export', '--model-dir', run['dir'], '--out', str(out)]) == 0
    saved = tf.saved_model.load(str(out))
    result = serve(saved, run['pvp'], [ex(t) for t in TEXTS])
    np.testing.assert_allclose(
        result['probabilities'].numpy(), probabilities(load(run['dir']).predict(TEXTS), WORDS), atol=1e-5
    )


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, '-m', 'pet_keras.commands', 'predict', '--help'],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for flag in ('--model-dir', '--input', '--output', '--format', '--batch-size', '--calibrate'):
        assert flag in result.stdout


# ---------------------------------------------------------------- a classifier's run folder


@pytest.fixture(scope='module')
def classifier_run(tok, tmp_path_factory):
    """A run folder written by fit_classifier (a few steps on TEXTS), and its scorer in memory."""
    from pet_keras.classifier import ClassifierScorer, build_classifier, fit_classifier

    folder = tmp_path_factory.mktemp('serving_classifier')
    tf.random.set_seed(6)
    mlm = make_mlm(len(tok._token_dict), folder / 'init')
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, write_vocab(folder / 'vocab.txt'))
    labels = ['negative', 'positive']
    train = [ex(t, labels[i % 2], 't:%d' % i) for i, t in enumerate(TEXTS * 2)]
    model = build_classifier(str(folder / 'ckpt' / 'bert_config.json'), str(folder / 'ckpt' / 'bert_model.ckpt'), 2)
    out = str(folder / 'run')
    results = fit_classifier(
        model,
        tok,
        labels,
        train,
        train[:4],
        train[4:],
        steps=4,
        eval_every=2,
        patience=None,
        learning_rate=1e-3,
        batch_size=4,
        maxlen=32,
        out_dir=out,
        verbose=0,
    )
    return {'dir': out, 'results': results, 'scorer': ClassifierScorer(model, tok, labels, maxlen=32)}


def test_a_classifier_folder_loads_predicts_and_exports(tok, classifier_run, tmp_path):
    out = classifier_run['dir']
    for name in ('classifier.json', 'classifier_weights.h5', 'bert_config.json', 'vocab.txt', 'results.json'):
        assert os.path.isfile(os.path.join(out, name)), name
    results = classifier_run['results']
    assert [r['step'] for r in results['evaluations']] == [2, 4] and results['budget']['steps'] == 4
    want = classifier_run['scorer'].predict_proba([ex(t) for t in TEXTS], verbose=False)
    predictor = load(out)
    assert predictor.labels == ['negative', 'positive'] and predictor.fields == ['text'] and predictor.pvp is None
    np.testing.assert_allclose(probabilities(predictor.predict(TEXTS), predictor.labels), want, atol=1e-5)
    # pet-keras predict and export take the folder too
    texts = tmp_path / 'texts.txt'
    texts.write_text('\n'.join(TEXTS) + '\n', encoding='utf-8')
    assert main(['predict', '--model-dir', out, '--input', str(texts), '--output', str(tmp_path / 'p.jsonl')]) == 0
    lines = [json.loads(line) for line in (tmp_path / 'p.jsonl').read_text(encoding='utf-8').splitlines()]
    np.testing.assert_allclose(probabilities(lines, predictor.labels), want, atol=1e-5)
    assert main(['export', '--model-dir', out, '--out', str(tmp_path / 'export')]) == 0
    saved = tf.saved_model.load(str(tmp_path / 'export')).signatures['serving_default']
    encoded = [tok.encode(t, maxlen=32) for t in TEXTS]
    served = saved(
        token_ids=tf.constant(sequence_padding([e[0] for e in encoded]), tf.int32),
        segment_ids=tf.constant(sequence_padding([e[1] for e in encoded]), tf.int32),
    )
    np.testing.assert_allclose(served['probabilities'].numpy(), want, atol=1e-5)
    assert [s.decode() for s in served['label'].numpy()] == [line['prediction'] for line in lines]
    for name in ('classifier.json', 'vocab.txt'):
        assert os.path.isfile(os.path.join(tmp_path / 'export', 'assets', name)), name
