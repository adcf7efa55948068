"""pet_keras.batching.RandomMasker: BERT's 80/10/10 rule, never on special tokens."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import numpy as np
import pytest
from bert4keras.tokenizers import Tokenizer

from pet_keras.batching import RandomMasker


@pytest.fixture(scope='module')
def tokenizer(tiny_vocab):
    return Tokenizer({t: i for i, t in enumerate(tiny_vocab)}, do_lower_case=True)


@pytest.fixture(scope='module')
def ids(tokenizer):
    vocab = tokenizer._token_dict
    special = {i for t, i in vocab.items() if t.startswith('[')}
    ordinary = np.array(sorted(set(vocab.values()) - special))
    return {
        'special': np.array(sorted(special)),
        'ordinary': ordinary,
        'mask': vocab['[MASK]'],
        'cls': vocab['[CLS]'],
        'sep': vocab['[SEP]'],
        'pad': vocab['[PAD]'],
        'unk': vocab['[UNK]'],
        'unused': vocab['[unused1]'],
    }


def test_special_ids_are_the_bracketed_tokens(tokenizer, ids):
    masker = RandomMasker(tokenizer)
    assert masker.mask_id == ids['mask']
    assert set(masker.special_ids) == set(ids['special'])
    assert set(masker.ordinary_ids) == set(ids['ordinary'])
    assert len(ids['special']) == 10  # 5 special + 5 [unused*]


def test_never_chooses_special_tokens_or_excluded_positions(tokenizer, ids):
    rng = np.random.default_rng(0)
    masker = RandomMasker(tokenizer, rate=1.0, seed=1)  # every allowed token is chosen
    for _ in range(50):
        seq = rng.choice(ids['ordinary'], 40)
        specials = rng.choice(40, 10, replace=False)
        seq[specials] = rng.choice(ids['special'], 10)
        seq[0], seq[-1] = ids['cls'], ids['sep']
        exclude = [p for p in rng.choice(40, 5, replace=False)]
        source, target = masker(seq, exclude=exclude)
        special_pos = np.isin(seq, ids['special'])
        allowed = ~special_pos
        allowed[exclude] = False
        assert np.array_equal(target != 0, allowed)
        np.testing.assert_array_equal(source[~allowed], seq[~allowed])
        np.testing.assert_array_equal(target[allowed], seq[allowed])
        assert source.dtype.kind == 'i' and target.dtype.kind == 'i'
        assert len(source) == len(target) == 40


def test_rate_zero_changes_nothing(tokenizer, ids):
    seq = np.concatenate([[ids['cls']], ids['ordinary'][:50], [ids['sep']]])
    source, target = RandomMasker(tokenizer, rate=0.0, seed=0)(seq)
    np.testing.assert_array_equal(source, seq)
    assert not target.any()


def test_80_10_10_statistics(tokenizer, ids):
    rng = np.random.default_rng(123)
    masker = RandomMasker(tokenizer, rate=0.15, seed=5)
    chosen = masked = randomized = kept = total = 0
    replacements = []
    for _ in range(200):
        seq = rng.choice(ids['ordinary'], 100)
        source, target = masker(seq)
        pick = target != 0
        np.testing.assert_array_equal(target[pick], seq[pick])
        np.testing.assert_array_equal(source[~pick], seq[~pick])
        total += len(seq)
        chosen += pick.sum()
        masked += (source[pick] == ids['mask']).sum()
        changed = pick & (source != ids['mask']) & (source != seq)
        randomized += changed.sum()
        kept += (pick & (source == seq)).sum()
        replacements.extend(source[changed])
    assert chosen / total == pytest.approx(0.15, abs=0.02)
    assert masked / chosen == pytest.approx(0.80, abs=0.03)
    # a random replacement equal to the original (1 in ~196) counts as kept
    assert randomized / chosen == pytest.approx(0.10, abs=0.03)
    assert kept / chosen == pytest.approx(0.10, abs=0.03)
    assert masked + randomized + kept == chosen
    replacements = np.array(replacements)
    assert not np.isin(replacements, ids['special']).any()
    assert len(set(replacements.tolist())) > 100  # drawn across the ordinary vocabulary


def test_random_replacement_never_special_even_when_input_is_mostly_special(tokenizer, ids):
    masker = RandomMasker(tokenizer, rate=1.0, seed=3)
    seq = np.array([ids['cls']] + [ids['ordinary'][0]] * 500 + [ids['sep']])
    source, target = masker(seq)
    assert not np.isin(source[1:-1], ids['special'][ids['special'] != ids['mask']]).any()


def test_whole_word_masking_chooses_whole_words(tokenizer, ids):
    rng = np.random.default_rng(7)
    masker = RandomMasker(tokenizer, rate=0.15, seed=11)
    words_total = words_chosen = 0
    for _ in range(100):
        lengths = rng.integers(1, 4, 30)  # 30 words of 1-3 tokens
        word_ids = np.repeat(np.arange(30), lengths)
        seq = rng.choice(ids['ordinary'], len(word_ids))
        # [CLS] ... [SEP] with their own word ids
        seq = np.concatenate([[ids['cls']], seq, [ids['sep']]])
        word_ids = np.concatenate([[30], word_ids, [31]])
        source, target = masker(seq, word_ids=word_ids)
        chosen = target != 0
        assert not chosen[0] and not chosen[-1]
        for w in range(30):
            members = chosen[word_ids == w]
            assert members.all() or not members.any(), 'word %d partly masked' % w
        words_total += 30
        words_chosen += len(set(word_ids[chosen].tolist()))
        np.testing.assert_array_equal(target[chosen], seq[chosen])
    assert words_chosen / words_total == pytest.approx(0.15, abs=0.03)


def test_whole_word_respects_exclusions(tokenizer, ids):
    masker = RandomMasker(tokenizer, rate=1.0, seed=0)
    seq = ids['ordinary'][:6]
    word_ids = np.array([0, 0, 0, 1, 1, 1])
    source, target = masker(seq, exclude=[1], word_ids=word_ids)
    assert list(target != 0) == [True, False, True, True, True, True]
    assert source[1] == seq[1]


def test_same_seed_same_output(tokenizer, ids):
    seqs = [np.random.default_rng(i).choice(ids['ordinary'], 64) for i in range(20)]

    def run(seed):
        masker = RandomMasker(tokenizer, seed=seed)
        return [np.concatenate(masker(s)) for s in seqs]

    a, b, c = run(42), run(42), run(43)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
