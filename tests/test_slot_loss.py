"""How PET's slot trains (``--slot-loss``, ``layers.PetLoss``): the masked-LM loss
over the vocabulary, cross-entropy over the labels' words, or ADAPET's decoupled
label loss; each checked against the same loss computed in NumPy from the full
model's logits, and each shown to learn a task."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import numpy as np
import pytest

from bert4keras.optimizers import Adam
from pet_keras import budget
from pet_keras.batching import PetDataGenerator
from pet_keras.config import RunConfig
from pet_keras.pattern import PVP
from pet_keras.train import fit_pet
from test_predict_train import seed_all
from tiny import ex, make_mlm, sharpened_mlm, write_vocab

# a label with two words, one with one; the label losses need words of one length
WORDS = {'A': ['很', '好'], 'B': ['不'], 'C': ['感']}
TEXTS = ['春夏花草风雨', '秋冬石木山水黑白', '我你他', '红黄东西南北早晚', '开关上下']


@pytest.fixture(scope='module')
def sharp(tok, tmp_path_factory):
    seed_all(3)
    return sharpened_mlm(len(tok._token_dict), tmp_path_factory.mktemp('slot_loss'), seed=5)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def expected_loss(mlm, pvp, inputs, slot_loss):
    """The batch's loss from the full model's logits, in float64: the mean over the random
    masks' token losses and one term per labeled row's slot."""
    ids, segments, positions, targets, words = inputs
    logits = mlm.full_model([ids, segments], training=False).numpy().astype('float64')
    terms = []
    for row in range(len(ids)):
        word = words[row]
        slot = len(pvp.word_ids[word]) if word >= 0 else 0
        log_probs = log_softmax(logits[row, positions[row]])  # (n, vocab)
        for k in range(len(targets[row])):
            if targets[row, k] and (k >= slot or slot_loss == 'mlm'):
                terms.append(-log_probs[k, targets[row, k]])
        if word < 0 or slot_loss == 'mlm':
            continue
        gold_label = pvp.word_label[word]
        scores = {w: sum(log_probs[s, t] for s, t in enumerate(ids_)) for w, ids_ in enumerate(pvp.word_ids)}
        if slot_loss == 'labels':
            by_label = np.full(len(pvp.labels), -np.inf)
            for w, score in scores.items():
                by_label[pvp.word_label[w]] = np.logaddexp(by_label[pvp.word_label[w]], score)
            terms.append(-(by_label[gold_label] - np.log(np.exp(by_label).sum())))
        else:
            rivals = [s for w, s in scores.items() if pvp.word_label[w] != gold_label]
            terms.append(-scores[word] - sum(np.log1p(-np.exp(s)) for s in rivals))
    return np.mean(terms)


@pytest.mark.parametrize('slot_loss', budget.SLOT_LOSSES)
def test_loss_matches_numpy(tok, sharp, slot_loss):
    pvp = PVP('____满意。{text}', WORDS, tok, 40)
    labels = ['A', 'B', None, 'C', 'B']
    examples = [ex(t, label, 'x:%d' % i) for i, (t, label) in enumerate(zip(TEXTS, labels))]
    gen = PetDataGenerator(pvp, [e for e in examples if e.label], [e for e in examples if not e.label], 5, seed=1)
    model = sharp.training_model(pvp, slot_loss)
    model.compile(optimizer=Adam(1e-5))
    for _ in range(4):  # several draws of words and masks
        inputs, _ = next(iter(gen))
        inputs = [np.asarray(a, dtype='int32') for a in inputs]
        loss, _ = model.test_on_batch(inputs)
        assert loss == pytest.approx(expected_loss(sharp, pvp, inputs, slot_loss), rel=2e-4)


def test_mlm_slot_loss_is_the_masked_lm_loss(tok, sharp):
    """With ``mlm`` PET's loss is the plain masked-LM loss of the same positions."""
    pvp = PVP('____满意。{text}', WORDS, tok, 40)
    gen = PetDataGenerator(pvp, [ex(t, 'AB'[i % 2]) for i, t in enumerate(TEXTS)], batch_size=5, seed=2)
    inputs, _ = next(iter(gen))
    pet, plain = sharp.training_model(pvp, 'mlm'), sharp.training_model()
    for model in (pet, plain):
        model.compile(optimizer=Adam(1e-5))
    assert pet.test_on_batch(inputs) == pytest.approx(plain.test_on_batch(inputs[:4]), rel=1e-6)


@pytest.mark.parametrize('slot_loss', ['labels', 'decoupled'])
def test_label_losses_learn_a_task(tok, tmp_path, slot_loss):
    seed_all(0)
    rng = np.random.default_rng(0)
    pools = {'A': '春夏花草风雨红黄', 'B': '秋冬石木山水黑白'}

    def make(n, tag):
        return [
            ex(''.join(rng.choice(list(pools['AB'[i % 2]]), rng.integers(6, 12))), 'AB'[i % 2], '%s:%d' % (tag, i))
            for i in range(n)
        ]

    train, valid = make(64, 'train'), make(32, 'valid')
    pvp = PVP('____满意。{text}', {'A': ['很好'], 'B': ['不是']}, tok, 32)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'), hidden=64)
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        steps=15 * len(generator),
        eval_every=len(generator),
        learning_rate=3e-3,
        patience=None,
        slot_loss=slot_loss,
        out_dir=str(tmp_path / 'run'),
        verbose=0,
    )
    assert results['slot_loss'] == slot_loss
    assert results['valid'] >= 0.9 and results['valid'] > results['zero_shot']['valid'] + 0.3


def test_unknown_slot_loss_is_refused(tok, sharp, tmp_path):
    pvp = PVP('____满意。{text}', WORDS, tok, 40)
    with pytest.raises(ValueError, match='--slot-loss hinge: expected one of mlm, labels, decoupled'):
        fit_pet(sharp, pvp, None, [ex('春天', 'A')], slot_loss='hinge', out_dir=str(tmp_path / 'a'), verbose=0)
    with pytest.raises(ValueError, match='--slot-loss hinge: expected one of mlm, labels, decoupled'):
        RunConfig(slot_loss='hinge')
    assert not (tmp_path / 'a').exists()


def test_label_losses_refuse_words_of_several_lengths(tok, sharp, tmp_path):
    pvp = PVP('____满意。{text}', {'A': ['很'], 'B': ['不是']}, tok, 40)
    with pytest.raises(ValueError, match=r'--slot-loss labels .* one token length \(these have 1, 2\)'):
        fit_pet(sharp, pvp, None, [ex('春天', 'A')], slot_loss='labels', out_dir=str(tmp_path / 'a'), verbose=0)
    assert not (tmp_path / 'a').exists()
