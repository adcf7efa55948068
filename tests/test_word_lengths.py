"""Label words of different token lengths in one task: each word is read from
the cloze with as many [MASK] tokens as it has tokens, scored by its exact
log-probability (one forward pass per length per batch), trained at its own
length; pet_keras.pattern.PVP, pet_keras.scoring.Scorer, the generator."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import numpy as np
import pytest
import tensorflow as tf

from pet_keras.batching import PetDataGenerator
from pet_keras.pattern import PVP
from pet_keras.verbalizer import Verbalizer
from pet_keras.scoring import Scorer
from pet_keras.serving import export_saved_model
from pet_keras.train import fit_pet
from test_predict_train import seed_all
from tiny import ex, make_mlm, sharpened_mlm, write_vocab

# one word of 1 token, one of 2, one of 3; label B also has a 1-token word
WORDS = {'A': ['很'], 'B': ['不是', '好'], 'C': ['感觉如']}
TEXTS = ['春夏花草风雨', '秋冬石木山水黑白', '我你他', '红黄东西南北早晚前后左右里外', '开']


@pytest.fixture(scope='module')
def sharp(tok, tmp_path_factory):
    seed_all(7)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path_factory.mktemp('lengths'), seed=9)
    return mlm


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def brute_force(mlm, pvp, examples):
    """Label probabilities from the vocabulary logits at every position (the
    full model), one cloze per word at the word's length, in float64."""
    aggregate = {'sum': lambda s: np.log(np.exp(s - s.max()).sum()) + s.max(), 'mean': np.mean, 'max': np.max}
    rows = []
    for example in examples:
        word_scores = []
        for ids in pvp.word_ids:
            encoded = pvp.encode(example, len(ids))
            logits = (
                mlm.full_model([np.array([encoded.token_ids]), np.array([encoded.segment_ids])], training=False)
                .numpy()[0]
                .astype('float64')
            )
            log_probs = log_softmax(logits[encoded.slots])
            score = sum(log_probs[s, token] for s, token in enumerate(ids))
            word_scores.append(score / len(ids) if pvp.verbalizer.length_norm else score)
        word_scores = np.array(word_scores)
        labels = np.array(
            [aggregate[pvp.verbalizer.aggregation](word_scores[pvp.word_label == i]) for i in range(len(pvp.labels))]
        )
        rows.append(np.exp(log_softmax(labels)))
    return np.array(rows)


def test_words_of_different_lengths_get_one_cloze_per_length(tok):
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    assert pvp.slot_lengths == (1, 2, 3) and pvp.slot_length == 3
    assert pvp.word_length.tolist() == [1, 2, 1, 3] and pvp.word_label.tolist() == [0, 1, 1, 2]
    mask = tok._token_mask_id
    texts = set()
    for length in (1, 2, 3):
        encoded = pvp.encode(ex('春夏秋冬' * 20), length)  # long enough to be cut
        assert len(encoded.slots) == length and [encoded.token_ids[s] for s in encoded.slots] == [mask] * length
        assert encoded.token_ids.count(mask) == length and len(encoded.token_ids) <= 32
        texts.add(tuple(encoded.token_ids[encoded.slots[-1] + 1 :]))
    assert len(texts) == 1  # the same text at every length: the room is the longest slot's
    with pytest.raises(ValueError, match='use words_of_length'):
        pvp.label_token_ids
    index, ids = pvp.words_of_length(1)
    assert index.tolist() == [0, 2] and ids.shape == (2, 1)


@pytest.mark.parametrize('aggregation, length_norm', [('sum', False), ('mean', False), ('max', False), ('sum', True)])
def test_scores_equal_the_brute_force_full_vocabulary_log_probabilities(tok, sharp, aggregation, length_norm):
    pvp = PVP('____满意。{text}', Verbalizer(WORDS, aggregation, length_norm), tok, 40)
    examples = [ex(t) for t in TEXTS]
    scorer = Scorer(sharp, pvp, batch_size=2)
    assert len(scorer.model.inputs) == 3 * 3  # token ids, segment ids, slots for each of the three lengths
    got = scorer.predict_proba(examples, verbose=False)
    want = brute_force(sharp, pvp, examples)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # in log space too, where the unlikely labels' scores differ by tens of nats
    np.testing.assert_allclose(np.log(got), np.log(want), atol=1e-3)
    assert np.log(want).std(0).max() > 0.3  # rows differ: the comparison is not vacuous
    # file order gives the same rows: tests/test_benchmarks.py (baselines.ComparisonScorer)


def test_one_length_keeps_the_label_token_shortcut_and_agrees_with_brute_force(tok, sharp):
    pvp = PVP('____满意。{text}', {'A': ['不是'], 'B': ['是的'], 'C': ['感觉']}, tok, 40)
    examples = [ex(t) for t in TEXTS]
    scorer = Scorer(sharp, pvp)
    assert 'Label-Token-Logits' in [layer.name for layer in scorer.model.layers]
    np.testing.assert_allclose(
        scorer.predict_proba(examples, verbose=False), brute_force(sharp, pvp, examples), atol=2e-5
    )


def test_length_normalisation_changes_which_length_wins(tok, sharp):
    """A long word's summed log-probability is lower than a short one's of
    similar per-token fit; the mean per token removes that bias."""
    examples = [ex(t) for t in TEXTS]
    plain = Scorer(sharp, PVP('____满意。{text}', WORDS, tok, 40)).predict_proba(examples, verbose=False)
    normed = Scorer(sharp, PVP('____满意。{text}', Verbalizer(WORDS, length_norm=True), tok, 40)).predict_proba(
        examples, verbose=False
    )
    assert (normed[:, 2] > plain[:, 2]).all()  # C's word has 3 tokens: it gains from normalisation


def test_generator_trains_each_word_at_its_own_length(tok):
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    examples = [ex('春夏花草', 'A', 'a'), ex('秋冬石木', 'B', 'b'), ex('东西南北', 'C', 'c')]
    gen = PetDataGenerator(pvp, examples, batch_size=3, mask_rate=0.0, seed=0)
    mask = tok._token_mask_id
    seen = set()
    for _ in range(20):  # label B draws 不是 (2 tokens) or 好 (1)
        (ids, segs, positions, targets, words), _ = next(iter(gen))
        for row in range(3):
            label = pvp.labels.index(examples[row].label)
            target_ids = [int(t) for t in targets[row] if t > 0]
            word = next(w for w, lab in zip(pvp.word_ids, pvp.word_label) if lab == label and w == target_ids)
            assert pvp.word_ids[words[row]] == word
            slot = [int(p) for p, t in zip(positions[row], targets[row]) if t > 0]
            assert [int(ids[row, p]) for p in slot] == [mask] * len(word)  # as many masks as the word's tokens
            assert int((ids[row] == mask).sum()) == len(word)
            seen.add(tuple(word))
    assert seen == {tuple(w) for w in pvp.word_ids}


def test_words_of_one_two_and_three_tokens_are_learned(tok, tmp_path):
    seed_all(0)
    rng = np.random.default_rng(0)
    pools = {'A': '春夏花草风雨红黄', 'B': '秋冬石木山水黑白', 'C': '东西南北长短高低'}

    def make(n, tag):
        rows = []
        for i in range(n):
            label = 'ABC'[i % 3]
            rows.append(ex(''.join(rng.choice(list(pools[label]), rng.integers(6, 12))), label, '%s:%d' % (tag, i)))
        return rows

    train, valid, test = make(96, 'train'), make(48, 'valid'), make(48, 'test')
    words = {'A': ['很'], 'B': ['不是'], 'C': ['感觉如']}
    pvp = PVP('____满意。{text}', words, tok, 32)
    mlm = make_mlm(
        len(tok._token_dict),
        tmp_path / 'init',
        dict_path=write_vocab(tmp_path / 'vocab.txt'),
        hidden=64,
        intermediate=128,
    )
    generator = PetDataGenerator(pvp, train, batch_size=16, mask_rate=0.15, seed=0)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=25 * len(generator),
        eval_every=len(generator),
        learning_rate=3e-3,
        patience=8,
        out_dir=str(tmp_path / 'run'),
        verbose=0,
    )
    assert results['test'] >= 0.8 and results['test'] > results['zero_shot']['test'] + 0.3
    # each label is predicted: the lengths did not collapse onto the shortest word
    predicted = Scorer(mlm, pvp).predict_proba(test, verbose=False).argmax(1)
    assert set(predicted.tolist()) == {0, 1, 2}


def test_export_refuses_words_of_several_lengths(tok, tmp_path):
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    out = str(tmp_path / 'run')
    fit_pet(mlm, pvp, None, [ex('春天', 'A')], out_dir=out, verbose=0)
    with pytest.raises(ValueError, match='one cloze per length'):
        export_saved_model(out, str(tmp_path / 'export'))
    assert tf.io.gfile.exists(str(tmp_path / 'export')) is False
