"""A writer killed (SIGKILL) at any moment never leaves a part of a file under its final name.

A child process rewrites one file of a few MB again and again through one form of
:mod:`dmt.atomic` (``atomic_write`` in chunks, ``atomic_path`` written by name, ``write_json``),
and is killed at a random moment, many times. Every content carries its generation and the
SHA-256 of the rest, so a part of a file cannot pass for a whole one. After each kill the file is
a complete content no older than the last one seen (each child is killed after its first
whole write, so the file always exists).
The same check run on a plain ``open(path, "wb")`` writer finds torn files: it can fail.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from dmt.atomic import is_leftover, remove_leftovers

SIZE = 3 << 20  # bytes of payload per content: several MB, so a kill usually lands mid-write
ROUNDS = 16  # kills per form

CHILD = r'''
import hashlib, json, random, sys
from pathlib import Path
from dmt.atomic import atomic_path, atomic_write, write_json

form, dst, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
gen = int(sys.argv[4])
CHUNK = 1 << 16
TEXT = random.Random(0).randbytes(size // 2).hex()  # made once: the child's time goes to writing

def content(gen):
    body = b"%d\n" % gen + random.Random(gen).randbytes(size)
    return body + hashlib.sha256(body).hexdigest().encode()

def chunks(data):
    return (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))

while True:
    gen += 1
    if form == "atomic_write":
        with atomic_write(dst) as f:
            for part in chunks(content(gen)):
                f.write(part)
    elif form == "atomic_path":
        with atomic_path(dst) as tmp, open(tmp, "wb") as f:
            for part in chunks(content(gen)):
                f.write(part)
                f.flush()
    elif form == "write_json":
        body = f"{gen}:{TEXT}"
        write_json(dst, {"gen": gen, "body": body, "sha256": hashlib.sha256(body.encode()).hexdigest()})
    else:  # the control: what every writer did before dmt.atomic, minus the rename
        with open(dst, "wb") as f:
            for part in chunks(content(gen)):
                f.write(part)
                f.flush()
    print(gen, flush=True)
'''


def generation(path: Path, form: str) -> int:
    """The generation of a complete content at ``path``; AssertionError for a part of one."""
    data = path.read_bytes()
    if form == "write_json":
        doc = json.loads(data)  # a cut JSON does not parse
        assert hashlib.sha256(doc["body"].encode()).hexdigest() == doc["sha256"], "torn JSON"
        return doc["gen"]
    body, digest = data[:-64], data[-64:]
    assert len(body) > SIZE and hashlib.sha256(body).hexdigest().encode() == digest, f"torn file ({len(data)} bytes)"
    return int(body.split(b"\n", 1)[0])


def kill_rounds(tmp_path: Path, form: str, rounds: int) -> tuple[int, int, list[str]]:
    """Start, kill and check the writer ``rounds`` times; returns (kills mid-write, rounds, torn)."""
    rng = random.Random(form)
    dst = tmp_path / f"{form}.bin"
    last, mid_write, torn = 0, 0, []
    for _ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", CHILD, form, str(dst), str(SIZE), str(last)],
                                 stdout=subprocess.PIPE)
        child.stdout.readline()  # one whole write done: from now on the kill can land anywhere
        time.sleep(rng.uniform(0, 0.12))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        leftovers = [p for p in tmp_path.iterdir() if is_leftover(p)]
        mid_write += bool(leftovers)
        try:
            gen = generation(dst, form)
        except (AssertionError, ValueError) as exc:
            torn.append(str(exc))
            continue
        assert gen >= max(last, 1), f"{form}: generation {gen} after {last}: an older content came back"
        last = gen
        remove_leftovers(tmp_path)  # what a resumed run does under its lock
    return mid_write, rounds, torn


FORMS = ("atomic_write", "atomic_path", "write_json")


def test_a_killed_writer_leaves_the_old_or_the_new_file_whole(tmp_path: Path) -> None:
    mid_writes = 0
    for form in FORMS:
        folder = tmp_path / form
        folder.mkdir()
        mid_write, rounds, torn = kill_rounds(folder, form, ROUNDS)
        assert not torn, f"{form}: {len(torn)} of {rounds} kills left a part of a file: {torn[:3]}"
        assert not [p for p in folder.iterdir() if is_leftover(p)]
        mid_writes += mid_write
    # Many kills landed inside a write (a temporary file was left), so the rounds tested something.
    # Counted over all forms: write_json spends most of its time serialising, before any file exists.
    assert mid_writes >= len(FORMS) * ROUNDS // 4, f"only {mid_writes} kills landed mid-write"


def test_the_check_finds_torn_files_of_a_plain_writer(tmp_path: Path) -> None:
    _, rounds, torn = kill_rounds(tmp_path, "plain", 6)
    assert len(torn) >= 2, f"only {len(torn)} of {rounds} kills of a plain open(path, 'wb') tore the file"
