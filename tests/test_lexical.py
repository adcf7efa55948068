"""The lexical model (pet_keras.lexical) as the baseline (benchmarks/lexical.py) and as PET's
expert (--lexical): chosen on validation, scored on test, whole texts, saved without pickle."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'benchmarks'))
from lexical import lexical_baseline  # noqa: E402

from pet_keras.lexical import C_GRID, NGRAM_RANGES as NGRAMS  # noqa: E402

from test_inputs_read_only import checkpoint, jsonl, train_argv  # noqa: E402, F401  (fixtures)
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


def test_min_df_keeps_only_the_n_grams_of_that_many_texts():
    labeled = task(20) + [ex('独一无二', 'pos', 'x:once')]
    kept = lexical_baseline(labeled, task(10, 100), task(10, 200), min_df=2)
    every = lexical_baseline(labeled, task(10, 100), task(10, 200))
    assert every['min_df'] == 1 and kept['min_df'] == 2
    # the one text's own n-grams (独, 独一, 一无 …: 4 + 3 + 2 of them at most) are gone, the shared ones stay
    assert 0 < every['vocabulary'] - kept['vocabulary'] <= 9 and kept['test'] == 1.0


def test_the_expert_saved_and_loaded_scores_the_same_and_refuses_files_that_do_not_fit(tmp_path):
    import numpy as np

    from pet_keras.lexical import LexicalModel

    model, record = LexicalModel.fit(task(20), ['neg', 'pos', 'other'], ['text'], task(10, 100))
    assert record['chosen_by'] == 'validation' and record['valid'] == 1.0
    scores = model.scores(task(10, 200))
    assert scores.shape == (10, 3) and (scores.argmax(1) == [1 if i % 2 else 0 for i in range(10)]).all()
    assert (scores[:, 2] < scores[:, :2].min(1)).all()  # a label with no labeled rows never wins
    model.save(str(tmp_path), 4)
    loaded, weight = LexicalModel.load(str(tmp_path), ['text'])
    assert weight == 4.0 and loaded.labels == ['neg', 'pos', 'other']
    np.testing.assert_allclose(loaded.scores(task(10, 200)), scores, rtol=1e-6)

    spec = json.loads((tmp_path / 'lexical.json').read_text(encoding='utf-8'))
    assert spec['fields'] == ['text']
    # a lexical.json from before "fields" was recorded reads the pattern's fields
    (tmp_path / 'lexical.json').write_text(json.dumps({k: v for k, v in spec.items() if k != 'fields'}))
    assert LexicalModel.load(str(tmp_path), ['text'])[0].fields == ['text']
    (tmp_path / 'lexical.json').write_text(json.dumps(dict(spec, labels=['neg', 'pos'])), encoding='utf-8')
    with pytest.raises(ValueError, match='do not fit together'):
        LexicalModel.load(str(tmp_path), ['text'])
    (tmp_path / 'lexical.npz').write_bytes(b'not an npz')
    with pytest.raises(ValueError, match='not the lexical expert a run wrote'):
        LexicalModel.load(str(tmp_path), ['text'])


def test_the_weight_moves_the_mixture_from_pet_to_the_lexical_model():
    import numpy as np

    from pet_keras.lexical import choose_weight, mix

    pet = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    lexical = np.array([[-1.0, 1.0], [1.0, -1.0], [1.0, -1.0]])
    assert (mix(pet, lexical, 0).argmax(1) == [0, 0, 1]).all()  # PET alone
    assert (mix(pet, lexical, 64).argmax(1) == [1, 0, 0]).all()  # the lexical model all but alone
    np.testing.assert_allclose(mix(pet, lexical, 1).sum(1), 1, rtol=1e-6)
    weight, curve = choose_weight(pet, lexical, np.array([1, 0, 0]))
    assert (
        curve[0] == pytest.approx(1 / 3) and curve[weight] == 1.0 and weight == min(w for w in curve if curve[w] == 1)
    )


def test_train_adds_the_expert_by_default_and_predict_and_export_use_it(checkpoint, tmp_path, capsys):  # noqa: F811
    import numpy as np
    import tensorflow as tf
    from bert4keras.snippets import sequence_padding

    from pet_keras import commands
    from pet_keras.lexical import LexicalModel, mix
    from pet_keras.serving import export_saved_model, load

    def rows(n, offset):
        return [{'text': '今天去看看' * 4 + ('很好' if (i + offset) % 2 else '不好'), 'label': ('good', 'bad')[i % 2]}
                for i in range(n)]  # fmt: skip

    files = {split: jsonl(tmp_path / 'data' / ('%s.jsonl' % split), rows(n, 0)) for split, n in
             (('train', 12), ('valid', 8), ('test', 8))}  # fmt: skip
    out = tmp_path / 'run'
    assert commands.main(train_argv(checkpoint, files, out)) == 0
    assert 'with the lexical expert' in capsys.readouterr().out
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    expert = results['lexical_expert']
    assert [w['weight'] for w in expert['weights']] == [0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]
    assert expert['valid'] == max(w['valid'] for w in expert['weights']) and 0 <= expert['test'] <= 1
    assert expert['lexical']['test'] == 1.0  # 很好 / 不好 at the end of every text

    predictor = load(str(out))
    lexical, weight = LexicalModel.load(str(out), ['text'])
    examples = predictor.examples([r['text'] for r in rows(4, 1)])
    pet_alone = predictor.scorer.scorer.predict_proba(examples, verbose=False)
    expected = mix(pet_alone, lexical.scores(examples), weight)
    got = np.array(
        [[p['probabilities'][label] for label in predictor.labels] for p in predictor.predict_examples(examples)]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)

    # the SavedModel takes the text beside the token ids and gives the mixture's probabilities
    saved = tf.saved_model.load(export_saved_model(str(out), str(tmp_path / 'exported')))
    encoded = [predictor.pvp.encode(e) for e in examples]
    length = max(len(e.token_ids) for e in encoded)
    served = saved.signatures['serving_default'](
        token_ids=tf.constant(sequence_padding([e.token_ids for e in encoded], length), tf.int32),
        segment_ids=tf.constant(sequence_padding([e.segment_ids for e in encoded], length), tf.int32),
        text=tf.constant([e.fields['text'] for e in examples]),
    )
    np.testing.assert_allclose(served['probabilities'].numpy(), expected, atol=1e-5)
    assert (tmp_path / 'exported' / 'assets' / 'lexical.json').is_file()

    # --no-lexical with --overwrite: the old expert goes with the old run, so predict is PET's alone
    assert commands.main(train_argv(checkpoint, files, out, '--overwrite', '--no-lexical')) == 0
    assert not (out / 'lexical.json').exists() and not (out / 'lexical.npz').exists()
    assert 'lexical_expert' not in json.loads((out / 'results.json').read_text(encoding='utf-8'))


def test_lexical_without_labels_is_refused_before_any_work(checkpoint, tmp_path, capsys):  # noqa: F811
    from pet_keras import commands

    train = jsonl(
        tmp_path / 'train.jsonl', [{'text': '春天很好', 'label': 'good'}, {'text': '秋天不好', 'label': 'bad'}]
    )
    argv = train_argv(
        checkpoint, {'train': train, 'valid': train}, tmp_path / 'run', '--mode', 'zero-shot', '--lexical'
    )
    with pytest.raises(SystemExit):
        commands.main(argv)
    assert '--lexical learns from labeled examples beside PET' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


def test_the_saved_models_lexical_scores_are_scikit_learns(monkeypatch):
    """The TensorFlow port (serving._LexicalScores) against LexicalModel.scores, on texts with what
    the char analyzer changes: upper case (Latin, Greek, full width), runs of white space of
    several kinds, characters outside the BMP, n-grams not in the vocabulary, the empty text."""
    import random

    import numpy as np
    import tensorflow as tf

    from pet_keras import lexical
    from pet_keras.lexical import LexicalModel
    from pet_keras.serving import _LexicalScores

    rng = random.Random(0)
    pieces = list('今天我们去了那个地方看看好坏的ABCabcＦｕｌｌ ,.!ΣΑΣİ😀\t\n\u00a0\u3000')
    pieces += ['  ', '\n\n', '\u3000\u3000']

    def texts(n, labels=None):
        return [ex(''.join(rng.choice(pieces) for _ in range(rng.randint(0, 30))), labels and rng.choice(labels))
                for _ in range(n)]  # fmt: skip

    labeled = texts(60, 'xyz')
    held_out = texts(100) + [ex(''), ex('   '), ex('未见')]
    for ngram in NGRAMS:
        monkeypatch.setattr(lexical, 'NGRAM_RANGES', (ngram,))
        model, _ = LexicalModel.fit(labeled, ['x', 'y', 'z', 'w'], ['text'], folds=3)
        served = _LexicalScores(model)(tf.constant([e.fields['text'] for e in held_out])).numpy()
        np.testing.assert_allclose(served, model.scores(held_out), atol=1e-5)


def test_an_ensemble_refuses_lexical_before_any_work(tmp_path):
    from pet_keras.config import RunConfig, TaskSpec
    from pet_keras.ensemble import full_pet

    rows = task(4)
    spec = TaskSpec('t', '____{text}', {'neg': ['不'], 'pos': ['很']}, train=rows, valid=rows, test=rows)
    config = RunConfig(lexical=True, out=str(tmp_path / 'run'))
    with pytest.raises(ValueError, match='--lexical is for a run of one pattern'):
        full_pet(spec, config, {'a': '____{text}', 'b': '{text}____'})
    assert not (tmp_path / 'run').exists()


def test_train_with_lexical_and_no_validation_cross_validates_the_expert(checkpoint, tmp_path, capsys):  # noqa: F811
    from pet_keras import commands
    from pet_keras.lexical import DEFAULT_WEIGHT

    rows = [{'text': '今天去看看' + ('很好' if i % 2 else '不好'), 'label': ('bad', 'good')[i % 2]} for i in range(12)]
    files = {'train': jsonl(tmp_path / 'train.jsonl', rows), 'test': jsonl(tmp_path / 'test.jsonl', rows[:6])}
    out = tmp_path / 'run'
    assert commands.main(train_argv(checkpoint, files, out, '--lexical', '--folds', '2')) == 0
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    expert = results['lexical_expert']
    assert expert['weight'] == DEFAULT_WEIGHT and expert['valid'] is None and 'weights' not in expert
    assert expert['lexical']['chosen_by'] == '2-fold cross-validation' and expert['lexical']['test'] == 1.0
    assert results['cross_validation']['folds'] == 2 and (out / 'lexical.npz').is_file()
    # the estimate a user reads is the mixture's too: each fold's PET run with an expert of its training rows
    mixed = results['cross_validation']['with_lexical_expert']
    assert len(mixed['fold_accuracy']) == 2 and mixed['accuracy'] == 1.0 and mixed['stderr'] == 0.0
    assert 'cross-validated accuracy with the lexical expert 1.0000 ± 0.0000' in capsys.readouterr().out


def test_one_label_skips_the_default_expert_and_refuses_lexical(checkpoint, tmp_path, capsys):  # noqa: F811
    from pet_keras import commands

    rows = [{'text': '今天去看看很好', 'label': 'good'}] * 4
    both = rows + [{'text': '今天去看看不好', 'label': 'bad'}] * 4
    files = {'train': jsonl(tmp_path / 'train.jsonl', rows), 'valid': jsonl(tmp_path / 'valid.jsonl', both)}
    with pytest.raises(SystemExit):
        commands.main(train_argv(checkpoint, files, tmp_path / 'refused', '--lexical'))
    assert 'the labeled examples have fewer than two labels' in capsys.readouterr().err
    assert not (tmp_path / 'refused').exists()
    assert commands.main(train_argv(checkpoint, files, tmp_path / 'run')) == 0
    assert not (tmp_path / 'run' / 'lexical.json').exists()
    assert 'lexical_expert' not in json.loads((tmp_path / 'run' / 'results.json').read_text(encoding='utf-8'))
