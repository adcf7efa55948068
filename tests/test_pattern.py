"""pet_keras.pattern: patterns, verbalizers and the cloze inputs of a PVP."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json

import numpy as np
import pytest
import tensorflow as tf

from bert4keras.snippets import sequence_padding

from pet_keras.data import Example
from pet_keras.batching import PetDataGenerator
from pet_keras.pattern import PVP, Pattern
from pet_keras.verbalizer import Verbalizer
from pet_keras.scoring import Scorer, class_logits
from pet_keras.presets import NEWS_PATTERNS, PAIR_PATTERNS, SENTIMENT_PATTERNS, SENTIMENT_WORDS
from tiny import ex, sharpened_mlm

NEWS_WORDS = {'体育': ['体育'], '财经': ['财经'], '故事': ['故事'], '文化': ['文化'], '汽车': ['汽车']}


def tokens(tok, ids):
    return tok.ids_to_tokens(list(ids))


def sentiment_pvp(tok, template='____满意。{text}', maxlen=64):
    return PVP(template, Verbalizer(SENTIMENT_WORDS), tok, maxlen)


# ---------------------------------------------------------------- Pattern parsing


def test_pattern_parts_and_fields():
    p = Pattern('____满意。{text}')
    assert p.parts == [('slot', None), ('literal', '满意。'), ('field', 'text')]
    assert p.fields == ['text']
    q = Pattern('{a}？____，{b}')
    assert q.parts == [('field', 'a'), ('literal', '？'), ('slot', None), ('literal', '，'), ('field', 'b')]
    assert q.fields == ['a', 'b']
    # any run of two or more underscores is the slot; a single one is literal text
    r = Pattern('{text}_是__')
    assert r.parts == [('field', 'text'), ('literal', '_是'), ('slot', None)]


@pytest.mark.parametrize(
    'template, message',
    [
        ('满意。{text}', 'found 0'),
        ('____满意____{text}', 'found 2'),
        ('{text}__很__', 'found 2'),
        ('____满意。', 'no text field'),
        ('____满意。{}', 'no text field'),
    ],
)
def test_pattern_errors(template, message):
    with pytest.raises(ValueError, match=message) as info:
        Pattern(template)
    assert repr(template) in str(info.value)


@pytest.mark.parametrize('name', sorted(SENTIMENT_PATTERNS) + sorted(NEWS_PATTERNS) + sorted(PAIR_PATTERNS))
def test_presets_parse(name):
    template = {**SENTIMENT_PATTERNS, **NEWS_PATTERNS, **PAIR_PATTERNS}[name]
    p = Pattern(template)
    assert sum(kind == 'slot' for kind, _ in p.parts) == 1
    assert p.fields


def test_verbalizer_errors():
    with pytest.raises(ValueError, match='no labels'):
        Verbalizer({})
    with pytest.raises(ValueError, match='aggregation'):
        Verbalizer({'a': '很'}, aggregation='median')
    with pytest.raises(ValueError, match="'b'"):
        Verbalizer({'a': '很', 'b': []})
    with pytest.raises(ValueError, match="'b'"):
        Verbalizer({'a': '很', 'b': ['不', ' ']})


# ---------------------------------------------------------------- encode

TEXT = '我们有花'  # no pattern characters


@pytest.mark.parametrize(
    'name, expected',
    [
        ('P1', ['[CLS]', '[MASK]', '满', '意', '。', '我', '们', '有', '花', '[SEP]']),
        ('P2', ['[CLS]', '我', '们', '有', '花', '[MASK]', '满', '意', '。', '[SEP]']),
        ('P3', ['[CLS]', '[MASK]', '好', '。', '我', '们', '有', '花', '[SEP]']),
        ('P4', ['[CLS]', '[MASK]', '理', '想', '。', '我', '们', '有', '花', '[SEP]']),
        ('P5', ['[CLS]', '感', '觉', '如', '何', '？', '[MASK]', '满', '意', '。', '我', '们', '有', '花', '[SEP]']),
    ],
)
def test_sentiment_presets_encode(tok, name, expected):
    pvp = sentiment_pvp(tok, SENTIMENT_PATTERNS[name])
    e = pvp.encode(ex(TEXT, 'positive'))
    assert tokens(tok, e.token_ids) == expected
    assert e.slots == [expected.index('[MASK]')]
    assert e.segment_ids == [0] * len(expected)
    assert e.label == pvp.labels.index('positive')


def test_prefix_slot_right_after_cls(tok):
    e = sentiment_pvp(tok, '____满意。{text}').encode(ex('春夏秋冬'))
    assert e.slots == [1]
    assert e.token_ids[1] == tok._token_mask_id
    assert e.label is None


def test_suffix_slot_just_after_text(tok):
    for text in ('花', '春夏秋冬', '我们有花草风雨'):
        e = sentiment_pvp(tok, '{text}____满意。').encode(ex(text))
        assert e.slots == [1 + len(text)]
        assert e.token_ids[e.slots[0]] == tok._token_mask_id
        assert tokens(tok, e.token_ids[1 : 1 + len(text)]) == list(text)


def test_pair_pattern_encode(tok):
    pvp = sentiment_pvp(tok, PAIR_PATTERNS['Q1'])
    e = pvp.encode(Example({'a': '春天', 'b': '花开'}, 'negative', 'pairs:1'))
    assert tokens(tok, e.token_ids) == ['[CLS]', '春', '天', '？', '[MASK]', '，', '花', '开', '[SEP]']
    assert e.slots == [4]
    assert e.label == pvp.labels.index('negative')


def test_missing_field_names_source(tok):
    pvp = sentiment_pvp(tok, PAIR_PATTERNS['Q1'])
    with pytest.raises(ValueError, match='pairs.tsv:3') as info:
        pvp.encode(Example({'a': '春天'}, None, 'pairs.tsv:3'))
    assert 'b' in str(info.value)


def test_news_preset_two_character_slot(tok):
    pvp = PVP(NEWS_PATTERNS['N1'], Verbalizer(NEWS_WORDS), tok, 64)
    assert pvp.slot_length == 2
    assert pvp.label_token_ids.shape == (len(NEWS_WORDS), 2)
    for row, word in zip(pvp.label_token_ids, NEWS_WORDS):
        assert tokens(tok, row) == list(word)
    e = pvp.encode(ex('春天来了', '体育'))
    assert tokens(tok, e.token_ids)[:11] == [
        '[CLS]',
        '下',
        '面',
        '报',
        '导',
        '一',
        '则',
        '[MASK]',
        '[MASK]',
        '新',
        '闻',
    ]
    assert e.slots == [7, 8]


def test_n2_full_sequence(tok):
    pvp = PVP(NEWS_PATTERNS['N2'], Verbalizer(NEWS_WORDS), tok, 64)
    e = pvp.encode(ex('春天来', '财经'))
    assert tokens(tok, e.token_ids) == ['[CLS]', '春', '天', '来', '（', '[MASK]', '[MASK]', '新', '闻', '）', '[SEP]']
    assert e.slots == [5, 6]
    assert e.label == pvp.labels.index('财经')


# ---------------------------------------------------------------- truncation

LONG = '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬'  # 40 characters


def test_truncation_prefix(tok):
    pvp = sentiment_pvp(tok, '____满意。{text}', maxlen=16)
    e = pvp.encode(ex(LONG))
    assert len(e.token_ids) == 16 == len(e.segment_ids)
    toks = tokens(tok, e.token_ids)
    assert toks[:5] == ['[CLS]', '[MASK]', '满', '意', '。']
    assert toks[-1] == '[SEP]'
    assert toks[5:-1] == list(LONG[:10])  # the text is cut from its end
    assert e.slots == [1]


def test_truncation_suffix(tok):
    pvp = sentiment_pvp(tok, '{text}____满意。', maxlen=16)
    e = pvp.encode(ex(LONG))
    assert len(e.token_ids) == 16
    toks = tokens(tok, e.token_ids)
    assert toks == ['[CLS]'] + list(LONG[:10]) + ['[MASK]', '满', '意', '。', '[SEP]']
    assert e.slots == [11]


def test_truncation_p5_and_exact_fit(tok):
    pvp = sentiment_pvp(tok, SENTIMENT_PATTERNS['P5'], maxlen=20)
    e = pvp.encode(ex(LONG))
    assert len(e.token_ids) == 20
    assert tokens(tok, e.token_ids[:10]) == ['[CLS]', '感', '觉', '如', '何', '？', '[MASK]', '满', '意', '。']
    # a text that fits exactly is not cut
    e = pvp.encode(ex(LONG[:9]))
    assert len(e.token_ids) == 20 and tokens(tok, e.token_ids[10:19]) == list(LONG[:9])


def test_truncation_pair_cuts_longer_field_first(tok):
    pvp = sentiment_pvp(tok, PAIR_PATTERNS['Q1'], maxlen=20)  # 5 pattern tokens: 15 for the texts
    a, b = LONG[:30], '春夏秋冬风'
    e = pvp.encode(Example({'a': a, 'b': b}, 'positive', 'p:1'))
    assert len(e.token_ids) == 20
    toks = tokens(tok, e.token_ids)
    assert toks == ['[CLS]'] + list(a[:10]) + ['？', '[MASK]', '，'] + list(b) + ['[SEP]']
    assert e.slots == [12]
    # the other way round: b is the longer one
    e = pvp.encode(Example({'a': b, 'b': a}, 'positive', 'p:2'))
    assert tokens(tok, e.token_ids) == ['[CLS]'] + list(b) + ['？', '[MASK]', '，'] + list(a[:10]) + ['[SEP]']
    # both long: both are cut, to (nearly) equal lengths, each keeping its beginning
    e = pvp.encode(Example({'a': LONG[:30], 'b': LONG[10:30]}, 'positive', 'p:3'))
    toks = tokens(tok, e.token_ids)
    assert len(toks) == 20
    q = toks.index('？')
    assert toks[q : q + 3] == ['？', '[MASK]', '，']
    kept_a, kept_b = toks[1:q], toks[q + 3 : -1]
    assert len(kept_a) + len(kept_b) == 15 and abs(len(kept_a) - len(kept_b)) <= 1
    assert kept_a == list(LONG[: len(kept_a)]) and kept_b == list(LONG[10 : 10 + len(kept_b)])


def test_truncation_multi_token_slot(tok):
    pvp = PVP(NEWS_PATTERNS['N1'], Verbalizer(NEWS_WORDS), tok, 16)
    e = pvp.encode(ex(LONG, '体育'))
    toks = tokens(tok, e.token_ids)
    assert len(toks) == 16
    assert toks[:12] == ['[CLS]', '下', '面', '报', '导', '一', '则', '[MASK]', '[MASK]', '新', '闻', '。']
    assert toks[12:15] == list(LONG[:3])


@pytest.mark.parametrize(
    'template, fixed',
    [('____满意。{text}', 6), ('{text}____满意。', 6), (SENTIMENT_PATTERNS['P5'], 11), (PAIR_PATTERNS['Q1'], 5)],
)
def test_maxlen_too_small_for_pattern(tok, template, fixed):
    room = len(Pattern(template).fields)  # at least one token per field
    with pytest.raises(ValueError, match='maxlen %d' % (fixed + room - 1)):
        sentiment_pvp(tok, template, maxlen=fixed + room - 1)
    pvp = sentiment_pvp(tok, template, maxlen=fixed + room)  # just enough
    fields = {name: LONG for name in Pattern(template).fields}
    e = pvp.encode(Example(fields, None, 'x:1'))
    assert len(e.token_ids) == fixed + room


# ---------------------------------------------------------------- verbalizer checks at start-up


def test_label_word_not_in_vocab(tok):
    with pytest.raises(ValueError, match='坏') as info:
        PVP('____满意。{text}', {'positive': '很', 'negative': '坏'}, tok)
    assert 'negative' in str(info.value)
    assert 'vocabulary' in str(info.value)


def test_label_word_partly_unknown(tok):
    with pytest.raises(ValueError, match='体坏'):
        PVP(NEWS_PATTERNS['N1'], {'体育': '体育', '其他': '体坏'}, tok)


def test_label_words_of_unequal_length_get_a_slot_length_each(tok):
    pvp = PVP(NEWS_PATTERNS['N1'], {'体育': '体育', '财经': '财', '故事': '故事'}, tok)
    assert pvp.slot_lengths == (1, 2) and pvp.word_length.tolist() == [2, 1, 2]


def test_every_unspellable_label_word_is_named_at_once(tok):
    with pytest.raises(ValueError, match='give other words for these labels') as info:
        PVP(NEWS_PATTERNS['N1'], {'体育': '体育', '财经': '财坏', '故事': '故坏'}, tok)
    assert "'财坏' (label '财经')" in str(info.value) and "'故坏' (label '故事')" in str(info.value)


def test_example_label_not_in_verbalizer(tok):
    pvp = sentiment_pvp(tok)
    bad = Example({'text': '春天'}, 'neutral', 'reviews.tsv:17')
    with pytest.raises(ValueError, match='reviews.tsv:17') as info:
        pvp.encode(bad)
    assert 'neutral' in str(info.value)
    # ... and it is refused when the generator is built, before any training
    with pytest.raises(ValueError, match='reviews.tsv:17'):
        PetDataGenerator(pvp, [ex('春天', 'positive'), bad])


def test_several_words_per_label(tok):
    pvp = PVP('____满意。{text}', {'positive': ['很', '好'], 'negative': ['不']}, tok)
    assert pvp.labels == ['positive', 'negative']
    assert pvp.label_token_ids.shape == (3, 1)
    assert tokens(tok, pvp.label_token_ids[:, 0]) == ['很', '好', '不']
    assert pvp.word_label.tolist() == [0, 0, 1]
    assert pvp.slot_length == 1


# ---------------------------------------------------------------- class_logits


def logsumexp(x):
    m = x.max()
    return m + np.log(np.exp(x - m).sum())


@pytest.mark.parametrize('aggregation', ['sum', 'mean', 'max'])
def test_class_logits_match_numpy(tok, aggregation):
    pvp = PVP(
        '____满意。{text}', Verbalizer({'A': ['很', '好'], 'B': ['不', '满', '意'], 'C': ['理']}, aggregation), tok
    )
    rng = np.random.default_rng(0)
    scores = (3 * rng.standard_normal((5, 6))).astype('float32')
    got = class_logits(pvp, tf.constant(scores)).numpy()
    groups = [[0, 1], [2, 3, 4], [5]]
    reduce = {'sum': logsumexp, 'mean': np.mean, 'max': np.max}[aggregation]
    want = np.array([[reduce(row[g]) for g in groups] for row in scores])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # softmax of the class logits is the label distribution
    probs = tf.nn.softmax(got).numpy()
    if aggregation == 'sum':  # summed word probabilities (over the label words), normalised
        word_probs = np.exp(scores - scores.max(1, keepdims=True))
        label_mass = np.stack([word_probs[:, g].sum(1) for g in groups], 1)
        np.testing.assert_allclose(probs, label_mass / label_mass.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(probs, np.exp(want) / np.exp(want).sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    # up to one constant per example: shifting an example's word scores changes nothing
    shifted = tf.nn.softmax(class_logits(pvp, tf.constant(scores + np.arange(5, dtype='float32')[:, None] * 7)))
    np.testing.assert_allclose(shifted.numpy(), probs, atol=1e-5)


def test_class_logits_one_word_per_label_is_identity(tok):
    pvp = sentiment_pvp(tok)
    scores = np.array([[1.0, -2.0], [0.5, 3.0]], dtype='float32')
    for aggregation in ('sum', 'mean', 'max'):
        pvp.verbalizer.aggregation = aggregation
        np.testing.assert_allclose(class_logits(pvp, tf.constant(scores)).numpy(), scores, atol=1e-6)


# ---------------------------------------------------------------- scoring against the full-vocabulary model


@pytest.fixture(scope='module')
def sharp_mlm(tok, tmp_path_factory):
    tf.random.set_seed(7)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path_factory.mktemp('sharp'), hidden=32, layers=2, seed=3)
    return mlm


def test_scoring_model_equals_full_model_logits_and_softmax_product(tok, sharp_mlm):
    pvp = PVP(NEWS_PATTERNS['N1'], Verbalizer(NEWS_WORDS), tok, 40)
    texts = ['春天来', '我们有花草风雨春夏秋冬', '东西南北红黄蓝白黑长短高低', '大小']
    examples = [ex(t, source='t:%d' % i) for i, t in enumerate(texts)]
    encoded = [pvp.encode(e) for e in examples]

    # reference: the full-vocabulary model, one example at a time (no padding)
    full_scores, full_probs = [], []
    for e in encoded:
        logits = sharp_mlm.full_model.predict([np.array([e.token_ids]), np.array([e.segment_ids])], verbose=0)[
            0
        ]  # (length, vocab)
        assert logits.shape == (len(e.token_ids), len(tok._token_dict))
        full_scores.append([sum(logits[s, w[i]] for i, s in enumerate(e.slots)) for w in pvp.label_token_ids])
        # tnews.py: product of per-position softmax probabilities, normalised over the labels
        softmax = np.exp(logits.astype('float64') - logits.max(-1, keepdims=True))
        softmax /= softmax.sum(-1, keepdims=True)
        word_p = np.array([np.prod([softmax[s, w[i]] for i, s in enumerate(e.slots)]) for w in pvp.label_token_ids])
        full_probs.append(word_p / word_p.sum())
    full_scores, full_probs = np.array(full_scores), np.array(full_probs)

    # the scoring model, on one padded batch
    scoring = sharp_mlm.scoring_model(pvp.label_token_ids)
    ids = sequence_padding([e.token_ids for e in encoded]).astype('int32')
    segs = sequence_padding([e.segment_ids for e in encoded]).astype('int32')
    slots = np.array([e.slots for e in encoded], dtype='int32')
    scores = scoring.predict([ids, segs, slots], verbose=0)
    np.testing.assert_allclose(scores, full_scores, rtol=1e-4, atol=1e-4)

    probs = Scorer(sharp_mlm, pvp, batch_size=3).predict_proba(examples, verbose=False)
    # the test means something only if the distributions are far from uniform and differ
    assert probs.max() > 0.5 and np.abs(probs - probs.mean(0)).max() > 0.05
    np.testing.assert_allclose(probs, full_probs, atol=1e-5)


def test_scoring_several_words_per_label_sums_probabilities(tok, sharp_mlm):
    pvp = PVP('____满意。{text}', {'positive': ['很', '好'], 'negative': ['不', '低']}, tok, 32)
    examples = [ex('春天花开'), ex('冬天风雨山水')]
    probs = Scorer(sharp_mlm, pvp).predict_proba(examples, verbose=False)
    for e, row in zip(examples, probs):
        enc = pvp.encode(e)
        logits = sharp_mlm.full_model.predict([np.array([enc.token_ids]), np.array([enc.segment_ids])], verbose=0)[0][
            1
        ].astype('float64')
        p = np.exp(logits - logits.max())
        p /= p.sum()
        pos = p[tok.token_to_id('很')] + p[tok.token_to_id('好')]
        neg = p[tok.token_to_id('不')] + p[tok.token_to_id('低')]
        np.testing.assert_allclose(row, [pos / (pos + neg), neg / (pos + neg)], atol=1e-5)


# ---------------------------------------------------------------- encode_plain, JSON


def test_encode_plain_has_no_pattern(tok):
    pvp = sentiment_pvp(tok, SENTIMENT_PATTERNS['P5'], maxlen=32)
    e = pvp.encode_plain(ex('春夏秋冬'))
    assert tokens(tok, e.token_ids) == ['[CLS]', '春', '夏', '秋', '冬', '[SEP]']
    assert e.segment_ids == [0] * 6
    assert e.slots is None and e.label is None
    assert tok._token_mask_id not in e.token_ids
    # a labeled example used as plain text loses its label too
    assert pvp.encode_plain(ex('春夏', 'positive')).label is None
    # respects maxlen
    assert len(pvp.encode_plain(ex(LONG)).token_ids) == 32


def test_encode_plain_pair_is_two_segments(tok):
    pvp = sentiment_pvp(tok, PAIR_PATTERNS['Q1'])
    e = pvp.encode_plain(Example({'a': '春天', 'b': '花开'}, None, 'p:1'))
    assert tokens(tok, e.token_ids) == ['[CLS]', '春', '天', '[SEP]', '花', '开', '[SEP]']
    assert e.segment_ids == [0, 0, 0, 0, 1, 1, 1]
    assert '？' not in tokens(tok, e.token_ids)


def test_json_round_trip(tok, tmp_path):
    pvp = PVP(SENTIMENT_PATTERNS['P5'], Verbalizer({'positive': ['很', '好'], 'negative': ['不']}, 'max'), tok, 48)
    spec = json.loads(json.dumps(pvp.to_json(), ensure_ascii=False))
    again = PVP.from_json(spec, tok)
    assert again.pattern.template == pvp.pattern.template
    assert again.verbalizer.label_words == pvp.verbalizer.label_words
    assert again.verbalizer.aggregation == 'max'
    assert again.maxlen == 48
    assert again.labels == pvp.labels
    np.testing.assert_array_equal(again.label_token_ids, pvp.label_token_ids)
    e1, e2 = pvp.encode(ex(LONG, 'negative')), again.encode(ex(LONG, 'negative'))
    assert (e1.token_ids, e1.slots, e1.label) == (e2.token_ids, e2.slots, e2.label)
    # save() writes the same spec, readable as UTF-8 JSON
    pvp.save(tmp_path / 'pvp.json')
    saved = json.loads((tmp_path / 'pvp.json').read_text(encoding='utf-8'))
    assert saved == spec
    assert '感觉如何' in (tmp_path / 'pvp.json').read_text(encoding='utf-8')
