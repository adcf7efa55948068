"""Automatic label-word search (pet_keras.label_search): the batched scores
against a brute-force full-vocabulary computation, candidate filtering, the
greedy assignment, and a model crafted so that one label's texts make one
token likelier at the slot."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import io
import json

import numpy as np
import pytest

from pet_keras.label_search import (
    CANDIDATES,
    assign,
    candidate_words,
    label_words_json,
    likelihood_ratios,
    print_label_words,
    read_dictionary,
    search,
    word_log_probs,
)
from pet_keras.pattern import PVP
from pet_keras.verbalizer import Verbalizer
from test_predict_train import seed_all
from test_word_lengths import log_softmax
from tiny import ex, make_tokenizer, sharpened_mlm, vocab_tokens

PATTERN = '____满意。{text}'
TEXTS = ['春夏花草风雨', '秋冬石木山水黑白', '我你他', '红黄东西南北早晚前后左右里外', '开']


@pytest.fixture(scope='module')
def sharp(tok, tmp_path_factory):
    seed_all(3)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path_factory.mktemp('search'), seed=5)
    return mlm


def test_batched_scores_equal_brute_force_full_vocabulary_log_probabilities(tok, sharp):
    words = ['很', '不', '好', '满意', '理想', '春夏', '感觉如', '东西南']
    pvp = PVP(PATTERN, Verbalizer({CANDIDATES: words}), tok, 40)
    examples = [ex(t, 'A' if i % 2 else 'B') for i, t in enumerate(TEXTS)]  # labels are not read
    got = word_log_probs(sharp, pvp, examples, batch_size=2, verbose=False)
    want = np.zeros_like(got, dtype='float64')
    for i, text in enumerate(TEXTS):
        for j, word in enumerate(words):
            # the cloze by hand: [CLS], as many [MASK] as the word has characters, the pattern's text, the text
            ids = tok.encode('满意。' + text)[0]
            ids = ids[:1] + [tok._token_mask_id] * len(word) + ids[1:]
            logits = sharp.full_model([np.array([ids]), np.zeros((1, len(ids)))], training=False).numpy()[0]
            log_probs = log_softmax(logits.astype('float64')[1 : 1 + len(word)])
            want[i, j] = sum(log_probs[s, tok.token_to_id(ch)] for s, ch in enumerate(word))
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert want.std(0).min() > 0.1  # each word's score depends on the text: the comparison is not vacuous


def test_candidates_are_the_vocabulary_characters_and_the_words_it_spells(tok, tmp_path):
    path = tmp_path / 'dict.txt'
    path.write_text(
        '好a 200 n\n春天 100 t\nab 90\n东西南北中 80 ns\n好 500 a\n满意 50 v\n理想 50 n\n'
        '很好吧 40 l\n东西南北 30 ns\n春天 10 t\n',
        encoding='utf-8',
    )
    dictionary = read_dictionary(str(path))
    assert dictionary[:3] == [('好a', 200), ('春天', 100), ('ab', 90)] and len(dictionary) == 10
    chars = [t for t in vocab_tokens() if len(t) == 1 and '\u4e00' <= t <= '\u9fff']
    assert '，' not in chars and 'a' not in chars
    # by frequency (ties in file order); not: mixed or Latin words, 5 characters, a character not in the
    # vocabulary (吧), single characters (already there), repeats
    got = candidate_words(tok, dictionary, top_n=10)
    assert got == chars + ['春天', '满意', '理想', '东西南北']
    assert candidate_words(tok, dictionary, top_n=2) == chars + ['春天', '满意']
    assert candidate_words(tok, dictionary, top_n=10, max_length=2) == chars + ['春天', '满意', '理想']
    assert all(tok.tokenize(w)[1:-1] == list(w) for w in got)
    # a compatibility ideograph in the vocabulary is read (normalised) as its unified twin: not a candidate
    assert candidate_words(make_tokenizer(vocab_tokens() + ['\uf9b2']), [], top_n=10) == chars
    path.write_text('春天 100\n夏天\n', encoding='utf-8')
    with pytest.raises(ValueError, match='dict.txt:2: expected "word frequency'):
        read_dictionary(str(path))


def test_jieba_dictionary_is_read():
    entries = read_dictionary()
    assert len(entries) > 300000 and entries[0] == ('AT&T', 3)
    assert dict(entries)['我们'] > 10000


def greedy(ratios, k):
    """Reference assignment: the argmax of the ratios, the taken word's
    column and a full label's row masked out, until every label has k."""
    r = np.array(ratios, dtype='float64')
    picks = {i: [] for i in range(r.shape[0])}
    while any(len(p) < k for p in picks.values()):
        i, j = np.unravel_index(np.argmax(r), r.shape)
        picks[i].append(j)
        r[:, j] = -np.inf
        if len(picks[i]) == k:
            r[i] = -np.inf
    return picks


def test_assignment_takes_the_best_pair_first_and_never_shares_a_word():
    ratios = np.array([[5.0, 4.0, 0.0, -1.0], [6.0, 1.0, 3.0, -2.0]])
    # per-label top 2 would give w0 to both; B's 6 is the best pair, so A falls back to w1 and then w3
    found = assign(ratios, ['A', 'B'], ['w0', 'w1', 'w2', 'w3'], k=2)
    assert found == {'A': [('w1', 4.0), ('w3', -1.0)], 'B': [('w0', 6.0), ('w2', 3.0)]}
    assert list(found) == ['A', 'B']
    assert label_words_json(found) == {'A': ['w1', 'w3'], 'B': ['w0', 'w2']}
    json.dumps(label_words_json(found))
    rng = np.random.default_rng(0)
    for trial in range(20):
        labels, k = ['L%d' % i for i in range(rng.integers(2, 6))], int(rng.integers(1, 4))
        words = ['w%d' % j for j in range(len(labels) * k + int(rng.integers(0, 6)))]
        ratios = rng.standard_normal((len(labels), len(words)))
        ratios[:, 0] += 3  # one word every label wants
        found = assign(ratios, labels, words, k)
        given = [w for pairs in found.values() for w, _ in pairs]
        assert len(given) == len(set(given)) == len(labels) * k
        assert {labels[i]: [words[j] for j in js] for i, js in greedy(ratios, k).items()} == label_words_json(found)
    with pytest.raises(ValueError, match='need more than the 3 candidates'):
        assign(np.zeros((2, 3)), ['A', 'B'], ['a', 'b', 'c'], k=2)


def test_likelihood_ratio_is_own_mean_minus_others_mean():
    log_probs = np.array([[-1.0, -4.0], [-3.0, -2.0], [-5.0, -2.0], [-2.0, -8.0]])
    labels = ['A', 'B', 'C', 'A']
    got = likelihood_ratios(log_probs, labels, ['A', 'B', 'C'])
    np.testing.assert_allclose(got[0], [-1.5 - -4.0, -6.0 - -2.0])
    np.testing.assert_allclose(got[1], [-3.0 - -8 / 3, -2.0 - -14 / 3])
    np.testing.assert_allclose(
        likelihood_ratios(log_probs, labels, ['A', 'B', 'C'], lengths=[1, 2])[:, 1], got[:, 1] / 2
    )
    with pytest.raises(ValueError, match='every label needs examples'):
        likelihood_ratios(log_probs, labels, ['A', 'B', 'C', 'D'])
    with pytest.raises(ValueError, match="labels \\['C'\\], not among"):
        likelihood_ratios(log_probs, labels, ['A', 'B'])


def carry(mlm, tok, carriers):
    """Make the model transparent: attention uniform over the text (zero
    queries and keys, identity values and output), no feed-forward, an
    identity MLM dense layer; dimension d of the embeddings is zero except
    for the carrier character of ``carriers[d]`` (weight 3) and its target
    token (weight 20), and the other embeddings are scaled down (0.1). A
    text with the carrier then moves the slot's output towards dimension d,
    and the target's logit up the most."""
    for layer in mlm.full_model.layers:
        weights = layer.get_weights()
        if layer.name.endswith('MultiHeadSelfAttention'):
            eye = np.eye(weights[0].shape[0])
            zero = np.zeros_like(weights[1])
            layer.set_weights([0 * eye, zero, 0 * eye, zero, eye, zero, eye, zero])
        elif layer.name.endswith('FeedForward'):
            layer.set_weights(weights[:2] + [0 * weights[2], 0 * weights[3]])
        elif layer.name == 'MLM-Dense':
            layer.set_weights([np.eye(weights[0].shape[0]), 0 * weights[1]])
        elif layer.name in ('Embedding-Token', 'Embedding-Segment', 'Embedding-Position'):
            table = 0.1 * weights[0]
            table[:, : len(carriers)] = 0
            if layer.name == 'Embedding-Token':
                for d, (carrier, target) in enumerate(carriers):
                    table[tok.token_to_id(carrier), d] = 3
                    table[tok.token_to_id(target), d] = 20
            layer.set_weights([table])


def test_search_finds_the_word_each_label_makes_likelier(tok, tmp_path):
    seed_all(1)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path, seed=2)
    carry(mlm, tok, [('春', '冷'), ('秋', '热')])  # texts of A carry 春 → 冷; texts of B carry 秋 → 热
    rng = np.random.default_rng(0)
    filler = list('山水花草风雨东西南北红黄蓝白我你他')
    examples = []
    for i in range(12):
        label, carrier = ('A', '春') if i % 2 else ('B', '秋')
        text = list(rng.choice(filler, rng.integers(4, 10)))
        text.insert(int(rng.integers(0, len(text))), carrier)
        examples.append(ex(''.join(text), label, 'train:%d' % i))
    candidates = candidate_words(tok, [('冷热', 9), ('春秋', 8), ('山水', 7), ('东西南北', 6)])
    found = search(mlm, PATTERN, tok, examples, k=2, labels=['B', 'A'], maxlen=32, candidates=candidates, verbose=False)
    assert list(found) == ['B', 'A']
    assert found['A'][0][0] == '冷' and found['B'][0][0] == '热'
    # by a margin, over the carriers themselves (a lesser weight) and the 2-character words
    assert all(found[label][0][1] > found[label][1][1] + 3 for label in found)
    out = io.StringIO()
    print_label_words(found, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ['label', '#', 'word', 'LR'] and len(lines) == 5
    assert lines[1].split()[:3] == ['B', '1', '热'] and lines[2].split()[:2] == ['2', '秋']
    assert float(lines[1].split()[3]) == pytest.approx(found['B'][0][1], abs=1e-3)
