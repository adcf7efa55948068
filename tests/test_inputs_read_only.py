"""Nothing a user made is destroyed: every command's output pointed at its inputs is refused
with their bytes unchanged; a finished run is replaced only with --overwrite; predictions and
the final checkpoint are written whole or not at all."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import hashlib
import json
import os
from pathlib import Path

import pytest

from pet_keras import commands, compat, subcommands, train
from pet_keras.io import TEMPORARY
from test_reliability import run_in_process
from tiny import make_mlm, make_tokenizer, write_vocab

REPO = Path(__file__).resolve().parents[1]
TEXTS = ['春天很好', '秋天不好', '花草很美', '石头不美', '风雨很大', '山水不远']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp('read_only')
    tok = make_tokenizer()
    mlm = make_mlm(len(tok._token_dict), folder / 'build', hidden=32, layers=1, max_position=64)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, write_vocab(folder / 'vocab.txt'))
    return folder / 'ckpt'


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8')
    return path


def task_files(folder):
    rows = [{'text': t, 'label': 'good' if '很' in t else 'bad'} for t in TEXTS]
    return {split: jsonl(folder / ('%s.jsonl' % split), rows) for split in ('train', 'valid', 'test')}


def train_argv(checkpoint, files, out, *more):
    argv = ['train', '--checkpoint-dir', checkpoint, '--pattern', '____{text}', '--out', out]
    argv += [
        '--label-words',
        json.dumps({'good': '很', 'bad': '不'}),
        '--steps',
        '2',
        '--eval-every',
        '2',
        '--maxlen',
        '32',
    ]
    for split, path in files.items():
        argv += ['--%s' % split, path]
    return [str(a) for a in argv + list(more)]


def command(capsys, argv):
    """``pet-keras argv`` in this process: (exit status, stderr)."""
    try:
        code = commands.main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def script(monkeypatch, capsys, name, argv):
    """A script run in this process: (exit status, stderr)."""
    code, _, err = run_in_process(monkeypatch, capsys, name, *argv)
    return code, err


def fingerprint(*roots):
    """{path: sha256} of every file under ``roots`` (files or folders)."""
    found = {}
    for root in map(Path, roots):
        for path in [root] if root.is_file() else sorted(p for p in root.rglob('*') if p.is_file()):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope='module')
def run_folder(checkpoint, tmp_path_factory):
    """A finished zero-shot run folder (predict's and export's input)."""
    folder = tmp_path_factory.mktemp('run')
    files = task_files(folder / 'data')
    assert commands.main(train_argv(checkpoint, files, folder / 'run', '--mode', 'zero-shot')) == 0
    return folder / 'run'


def refused(code, err, *fragments):
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith('error: ') and 'Traceback' not in err, err
    assert all(f in line for f in fragments), line


def test_train_refuses_an_out_on_any_input_and_leaves_it_unchanged(checkpoint, tmp_path, capsys):
    files = task_files(tmp_path / 'data')
    task = tmp_path / 'tasks' / 'task.json'
    task.parent.mkdir()
    task.write_text(json.dumps({'pattern': '____{text}'}), encoding='utf-8')
    before = fingerprint(tmp_path / 'data', checkpoint, task)
    for out in (tmp_path / 'data', tmp_path, checkpoint, checkpoint.parent, task.parent):
        code, err = command(capsys, train_argv(checkpoint, files, out) + ['--task', str(task)])
        refused(code, err, '--out %s' % out, 'which this command reads')
        code, err = command(
            capsys, train_argv(checkpoint, files, out, '--lexical', '--task', str(task))
        )  # its files too
        refused(code, err, '--out %s' % out, 'which this command reads')
    for out in list(files.values()) + [checkpoint / 'bert_model.ckpt.index']:
        code, err = command(capsys, train_argv(checkpoint, files, out))
        refused(code, err)  # a file: refused as one, before anything is read
    assert fingerprint(tmp_path / 'data', checkpoint, task) == before


def test_the_scripts_refuse_an_out_on_their_data_or_checkpoint(checkpoint, tmp_path, monkeypatch, capsys):
    data = tmp_path / 'sentiment'
    data.mkdir()
    for split in ('train', 'valid', 'test'):
        (data / ('sentiment.%s.data' % split)).write_text('春天很好\t1\n秋天不好\t0\n', encoding='utf-8')
    before = fingerprint(data, checkpoint)
    for out in (data, tmp_path, checkpoint, checkpoint.parent):
        argv = ['--checkpoint-dir', checkpoint, '--data-dir', data, '--out', out, '--mode', 'zero-shot']
        code, err = script(monkeypatch, capsys, 'sentiment.py', argv)
        refused(code, err, 'which this command reads')
    assert fingerprint(data, checkpoint) == before


def test_pretrain_refuses_an_out_on_its_checkpoint_or_corpus(checkpoint, tmp_path, monkeypatch, capsys):
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text('春天很好。\n' * 10, encoding='utf-8')
    before = fingerprint(checkpoint, corpus)
    for out in (checkpoint, checkpoint.parent, tmp_path):
        argv = ['--init-checkpoint', checkpoint, '--corpus', corpus, '--out', out, '--steps', '1']
        code, err = script(monkeypatch, capsys, 'pretrain.py', argv)
        refused(code, err, 'which this command reads')
    assert fingerprint(checkpoint, corpus) == before


def test_predict_refuses_an_output_on_its_input_or_model(run_folder, tmp_path, capsys):
    source = jsonl(tmp_path / 'in.jsonl', [{'text': t, 'note': i} for i, t in enumerate(TEXTS)])
    before = fingerprint(source, run_folder)
    for output in (source, run_folder, run_folder / 'pvp.json'):
        argv = ['predict', '--model-dir', str(run_folder), '--input', str(source), '--output', str(output)]
        code, err = command(capsys, argv)
        refused(code, err, 'which this command reads')
    assert fingerprint(source, run_folder) == before


def test_export_refuses_an_out_on_its_model_even_with_overwrite(run_folder, capsys):
    before = fingerprint(run_folder)
    for out in (run_folder, run_folder.parent, run_folder / 'assets'):
        code, err = command(capsys, ['export', '--model-dir', str(run_folder), '--out', str(out), '--overwrite'])
        refused(code, err, 'which this command reads')
    assert fingerprint(run_folder) == before


def test_export_overwrite_replaces_another_folder_whole(run_folder, tmp_path, capsys):
    out = tmp_path / 'served'
    out.mkdir()
    (out / 'old.txt').write_text('old')
    assert command(capsys, ['export', '--model-dir', str(run_folder), '--out', str(out), '--overwrite'])[0] == 0
    assert (out / 'saved_model.pb').is_file() and not (out / 'old.txt').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.tmp-')]


def test_a_finished_run_is_replaced_only_with_overwrite(checkpoint, run_folder, tmp_path, capsys):
    files = task_files(tmp_path / 'data')
    out = tmp_path / 'run'
    assert command(capsys, train_argv(checkpoint, files, out, '--mode', 'zero-shot'))[0] == 0
    (out / 'notes.txt').write_text('mine')
    before = fingerprint(out)
    for more in ([], ['--lexical']):
        code, err = command(capsys, train_argv(checkpoint, files, out, '--mode', 'few-shot', *more))
        refused(code, err, 'holds a finished run', '--overwrite')
        assert fingerprint(out) == before
    code, err = command(capsys, train_argv(checkpoint, files, out, '--mode', 'few-shot', '--overwrite'))
    assert code == 0, err
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['budget']['steps'] == 2 and (out / 'notes.txt').read_text() == 'mine'


def test_predictions_are_written_whole_or_not_at_all(run_folder, tmp_path, monkeypatch, capsys):
    source = jsonl(tmp_path / 'in.jsonl', [{'text': t} for t in TEXTS])
    output = tmp_path / 'out.jsonl'
    output.write_text('previous predictions\n', encoding='utf-8')
    dumps, calls = json.dumps, []

    def disk_fills(value, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, 'No space left on device')
        return dumps(value, **kwargs)

    monkeypatch.setattr(subcommands.json, 'dumps', disk_fills)
    argv = ['predict', '--model-dir', str(run_folder), '--input', str(source), '--output', str(output)]
    code, err = command(capsys, argv)
    refused(code, err, str(output), 'No space left on device')
    assert output.read_text(encoding='utf-8') == 'previous predictions\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.jsonl', 'out.jsonl']


def test_predict_refuses_an_output_folder_that_does_not_exist_before_predicting(run_folder, tmp_path, capsys):
    source = jsonl(tmp_path / 'in.jsonl', [{'text': t} for t in TEXTS])
    argv = ['predict', '--model-dir', str(run_folder), '--input', str(source), '--output', str(tmp_path / 'no' / 'x')]
    code, err = command(capsys, argv)
    refused(code, err, 'create it first')
    assert 'example' not in err  # no progress bar: refused before scoring


def test_checkpoint_temporaries_carry_the_writers_marker(tmp_path, monkeypatch):
    """A killed run's checkpoint temporaries are found by ``io.remove_temporaries`` at lock takeover."""

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(compat.os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        compat.write_checkpoint(str(tmp_path / 'bert_model.ckpt'), {'a': [1.0, 2.0]})
    left = [p.name for p in tmp_path.iterdir()]
    assert left and all(name.startswith(TEMPORARY % (os.getpid(), '')) for name in left), left


def test_a_run_killed_writing_its_folder_resumes_without_training_again(checkpoint, tmp_path, monkeypatch, capsys):
    files = task_files(tmp_path / 'data')
    out = tmp_path / 'run'
    save_run = train.save_run

    def dies(mlm, *args):
        mlm.save_checkpoint = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
        save_run(mlm, *args)

    monkeypatch.setattr(train, 'save_run', dies)
    code, err = command(capsys, train_argv(checkpoint, files, out, '--mode', 'few-shot'))
    assert code == 130, err
    assert (out / 'backup').is_dir()  # kept until the run folder is complete
    monkeypatch.setattr(train, 'save_run', save_run)
    assert commands.main(train_argv(checkpoint, files, out, '--mode', 'few-shot', '--resume')) == 0
    assert 'training had ended' in capsys.readouterr().out
    run = json.loads((out / 'run.json').read_text(encoding='utf-8'))
    assert run['finished'] and run['trained'] and [r['step'] for r in run['evaluations']] == [2]
    assert not (out / 'backup').exists() and (out / 'bert_model.ckpt.index').is_file()


def test_a_dangling_symlink_as_out_is_one_line_before_anything(checkpoint, tmp_path, capsys):
    files = task_files(tmp_path / 'data')
    link = tmp_path / 'link'
    link.symlink_to(tmp_path / 'nowhere')
    code, err = command(capsys, train_argv(checkpoint, files, link))
    refused(code, err, 'a symbolic link to', 'which does not exist')
    assert 'train ' not in err and not (tmp_path / 'nowhere').exists()


def test_pretraining_refused_for_a_small_corpus_leaves_nothing(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text('春天很好。\n', encoding='utf-8')
    out = tmp_path / 'out'
    code, err = script(monkeypatch, capsys, 'pretrain.py', ['--corpus', corpus, '--out', out, '--steps', '1'])
    refused(code, err, 'corpus too small')
    assert not out.exists() or not any(out.iterdir())


def test_overwrite_never_removes_what_the_command_reads(run_folder, tmp_path, capsys):
    """A finished run used as the checkpoint of a new run into itself: --overwrite must not remove it."""
    files = task_files(tmp_path / 'data')
    before = fingerprint(run_folder)
    for out in (run_folder, run_folder.parent):
        for more in ([], ['--lexical']):
            code, err = command(capsys, train_argv(run_folder, files, out, '--overwrite', *more))
            refused(code, err, 'which this command reads')
    assert fingerprint(run_folder) == before
