"""Every file dmt writes goes through :mod:`dmt.atomic`, read from the source.

Each file under ``src/dmt`` is read with :mod:`ast`; a call that writes a file by itself fails the
test unless it sits lexically inside a ``with atomic_path(...)`` or ``with atomic_write(...)``
block (it then writes the temporary file the helper renames), or is in :data:`ALLOWED` with its
reason. ``src/dmt/atomic.py`` itself is the one place that opens, fsyncs and renames.

What counts as a write: ``open``/``.open`` with a mode that writes (``w``, ``a``, ``x``, ``+``) or
a mode that is not a literal; ``os.open``/``os.fdopen``; ``.write_text``/``.write_bytes``;
``os.replace``/``os.rename``, ``.replace(x)``/``.rename(x)`` with one argument (``Path``'s; the
string method takes two); ``shutil`` copies and moves; ``torch.save``, ``torch.jit.save``,
``save_file``, ``onnx.save_model``; ``torch.onnx.export`` given a file; ``.save``/``.savefig``/``np.save*``/``.tofile``
unless into a ``BytesIO``; and the stream writers ``logging.FileHandler`` and TensorBoard's
``SummaryWriter``, which append and therefore need a reason in :data:`ALLOWED`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dmt"
HELPER = "atomic.py"
ATOMIC_BLOCKS = {"atomic_path", "atomic_write"}

# (file below src/dmt, what is written) -> why it may bypass the helper
ALLOWED: dict[tuple[str, str], str] = {
    ("run/rundir.py", "open .lock"): "the run directory's lock file: flock needs an open file; it holds no content",
    ("run/rundir.py", "FileHandler log.txt"): "log.txt is appended line by line as the run goes; a kill can cut "
                                              "only its last line, and a log cannot be replaced whole",
    ("tasks/context.py", "SummaryWriter"): "TensorBoard event files are appended record by record "
                                           "(each with its length and checksum), never replaced whole",
    ("engine/checkpoint.py", "open"): "sort_header_metadata rewrites the header of the temporary file that "
                                      "save_checkpoint's atomic_path block hands it, before the rename",
    ("predict/export.py", "onnx.save_model"): "an exporter writes the temporary path that export_model's atomic_path "
                                              "block hands it; the file is renamed only once verified",
    ("cli/main.py", "os.open"): "opens /dev/null to take stdout's place once its reader has gone (a broken "
                                "pipe); no file is written",
    ("predict/export.py", "torch.jit.save"): "an exporter writes the temporary path that export_model's atomic_path "
                                             "block hands it; the file is renamed only once verified",
}

WRITE_MODES = set("wax+")
MODE_LETTERS = set("rwaxbt+U")
# module.function calls that write or move a file whatever their arguments
WRITERS = {("os", "replace"), ("os", "rename"), ("os", "renames"), ("shutil", "move"), ("shutil", "copy"),
           ("shutil", "copy2"), ("shutil", "copyfile"), ("shutil", "copytree"), ("os", "fdopen"),
           ("torch", "save"), ("jit", "save"), ("onnx", "save"), ("onnx", "save_model")}
SAVES = {"save", "savefig", "savez", "savez_compressed", "savetxt", "tofile"}


def _name(node: ast.AST) -> str:
    """``a.b.c`` for a name or an attribute chain, ``""`` for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _is_bytes_io(arg: ast.AST, buffers: set[str]) -> bool:
    if isinstance(arg, ast.Call):
        return _name(arg.func).split(".")[-1] == "BytesIO"
    return isinstance(arg, ast.Name) and arg.id in buffers


def _target(call: ast.Call) -> str:
    """A short readable form of the written file: the literal file name where there is one."""
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
            return node.value.rsplit("/", 1)[-1]
    return ""


def _writes(mode: ast.AST) -> bool:
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(WRITE_MODES & set(mode.value))
    return True  # a computed mode: cannot tell, so it must be shown safe


def _open_writes(call: ast.Call, position: int | None) -> bool:
    """Whether an ``open`` call may write: its mode (``mode=``, else positional ``position``).

    ``position`` None (``x.open(...)``: ``Path.open(mode)``, ``ZipFile.open(name, mode)``,
    ``Image.open(fp)``): any literal among the first two arguments that reads as a mode.
    """
    keyword = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if keyword is not None:
        return _writes(keyword)
    if position is not None:
        return len(call.args) > position and _writes(call.args[position])
    return any(isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value
               and set(a.value) <= MODE_LETTERS and _writes(a) for a in call.args[:2])


def write_kind(call: ast.Call, buffers: set[str]) -> str | None:
    """What ``call`` writes (``"open"``, ``"save"``...), or None when it writes no file itself."""
    full = _name(call.func)
    last = full.split(".")[-1]
    pair = tuple(full.split(".")[-2:])
    if full == "io.open" or isinstance(call.func, ast.Name) and full == "open":
        return "open" if _open_writes(call, 1) else None
    if pair in WRITERS:
        return full
    if full == "os.open":  # a write unless its flags are plainly read-only
        flags = {n.attr for n in ast.walk(call.args[1]) if isinstance(n, ast.Attribute)} if call.args[1:] else {""}
        return None if flags and flags <= {"O_RDONLY", "O_BINARY", "O_CLOEXEC", "O_DIRECTORY"} else "os.open"
    if last == "save_file":
        return "save_file"
    if last in ("FileHandler", "SummaryWriter"):
        return last
    if not isinstance(call.func, ast.Attribute):
        return None
    if last == "open":
        return "open" if _open_writes(call, None) else None
    if last in ("write_text", "write_bytes") and full.split(".")[0] != "atomic":
        return last
    if last in ("replace", "rename") and len(call.args) == 1 and not call.keywords:
        return last
    if full.endswith("onnx.export") and (len(call.args) > 2 or any(k.arg == "f" for k in call.keywords)):
        return "onnx.export"
    if last in SAVES and not (call.args and _is_bytes_io(call.args[0], buffers)):
        return last  # the file comes first: img.save(fp), fig.savefig(fname), np.save(file, a), a.tofile(fid)
    return None


def _buffers(tree: ast.AST) -> set[str]:
    """Names assigned a ``BytesIO()`` anywhere in the file (a save into one writes no file)."""
    return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and _name(node.value.func).split(".")[-1] == "BytesIO" for t in node.targets if isinstance(t, ast.Name)}


def _is_atomic_block(node: ast.AST) -> bool:
    return isinstance(node, (ast.With, ast.AsyncWith)) and any(
        isinstance(item.context_expr, ast.Call) and _name(item.context_expr.func).split(".")[-1] in ATOMIC_BLOCKS
        for item in node.items)


def bypasses(source: str, filename: str = "<src>") -> list[tuple[int, str]]:
    """``(line, "kind target")`` for every write in ``source`` outside an atomic block."""
    tree = ast.parse(source, filename)
    buffers = _buffers(tree)
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, inside: bool) -> None:
        if isinstance(node, ast.Call) and not inside:
            kind = write_kind(node, buffers)
            if kind is not None:
                found.append((node.lineno, f"{kind} {_target(node)}".strip()))
        if _is_atomic_block(node):
            for item in node.items:  # the helper's own arguments are outside its block
                visit(item, inside)
            for child in node.body:
                visit(child, True)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return found


def tree_bypasses(src: Path = SRC) -> dict[str, list[tuple[int, str]]]:
    """``file -> bypasses`` for every file below ``src`` but the helper, allowed entries removed."""
    out: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel == HELPER:
            continue
        bad = [(line, what) for line, what in bypasses(path.read_text(), str(path)) if (rel, what) not in ALLOWED]
        if bad:
            out[rel] = bad
    return out


def test_every_write_goes_through_the_helper() -> None:
    bad = tree_bypasses()
    lines = [f"src/dmt/{rel}:{line}: {what}" for rel, found in bad.items() for line, what in found]
    assert not lines, "writes that bypass dmt.atomic (use atomic_write/atomic_path/write_*):\n" + "\n".join(lines)


def test_every_allowance_is_still_needed() -> None:
    used = {(p.relative_to(SRC).as_posix(), what) for p in SRC.rglob("*.py")
            for _, what in bypasses(p.read_text(), str(p))}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"ALLOWED entries that match no write any more: {stale}"


BAD = '''
import io, json, os, shutil, torch
from pathlib import Path
from dmt.atomic import atomic_path, atomic_write, write_text

def bad(path, model, fig, img, mode):
    open(path, "w").write("x")
    with open(path, mode="ab") as f:
        f.write(b"x")
    open(path, mode)
    Path(path).write_text("x")
    Path(path).open("w")
    os.replace(path, path + ".old")
    Path(path).replace(path + ".old")
    shutil.copy(path, path + ".bak")
    torch.save(model.state_dict(), path)
    torch.jit.save(model, path)
    save_file({}, path)
    torch.onnx.export(model, (), path)
    fig.savefig(path)
    img.save(path, format="PNG")
    np.save(path, model)
    onnx.save_model(model, path)
    os.open(path, os.O_WRONLY | os.O_CREAT)
'''

GOOD = '''
import io, json
from pathlib import Path
from dmt import atomic
from dmt.atomic import atomic_path, atomic_write, write_text

def good(path, model, fig, img):
    open(path).read()
    open(path, "rb").read()
    Path(path).open().read()
    with atomic_write(path, "w") as f:
        f.write("x")
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
        torch.save(model, tmp)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    fig.savefig(io.BytesIO())
    write_text(path, "x")
    atomic.write_text(path, "x")
    "a-b".replace("-", "_")
    program = torch.onnx.export(model, (), dynamo=True)
    os.close(os.open(path, os.O_RDONLY))
'''


def test_the_check_sees_every_bad_write_and_passes_good_ones(tmp_path) -> None:
    kinds = {line: what.split()[0] for line, what in bypasses(BAD)}
    assert kinds == {7: "open", 8: "open", 10: "open", 11: "write_text", 12: "open", 13: "os.replace",
                     14: "replace", 15: "shutil.copy", 16: "torch.save", 17: "torch.jit.save", 18: "save_file",
                     19: "onnx.export", 20: "savefig", 21: "save", 22: "save",
                     23: "onnx.save_model", 24: "os.open"}
    assert bypasses(GOOD) == []
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "rundir.py").write_text('lock = open(".lock", "w")\nlog = open("log.txt", "a")\n')
    assert tree_bypasses(tmp_path) == {"run/rundir.py": [(2, "open log.txt")]}  # .lock is allowed, not log.txt
