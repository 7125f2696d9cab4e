"""Every command that README.md and docs/*.md show parses.

A command is a line of a code block (fenced, or indented by four spaces)
that starts with `python` (after indentation, a `$ ` prompt or VAR=value
assignments; a line ending in a backslash goes on on the next; `&&`, `;`
and `|` separate commands; `> FILE` is no argument). Ours are checked against their real parsers, in
this process, without running anything:

- python gan_keras/train.py ARGS, python vae_keras/train.py ARGS: the
  script's make_parser(), with its presets (common.arguments.parse);
- python -m common.evaluation.evaluate|sample|compare, python -m
  common.experiments NAME ARGS, python bench/speed.py ARGS: that module's
  make_parser(); the sweeps that pass their other arguments to a train.py
  (seeds, lr-sweep) have those checked by the train.py's parser too, and
  bench/speed.py's --model and each --variant likewise;
- python bench/ref_*.py ARGS: the reference loops' parser,
  bench/harness.py's (importing a loop would train).

Placeholders such as RUN_DIR or DIR are fine: they are positional values
or option values. Other commands (python -m venv, pip, pytest, tensorboard,
git) are not ours and are skipped."""
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT

from common import arguments, runs
from common.errors import UsageError
from common.experiments import EXPERIMENTS, sweep

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OURS = ("common", "gan_keras", "vae_keras", "bench")  # the packages whose commands are checked
PYTHON = ("python", "python3")
SEPARATORS = ("&&", "||", ";", "|")
REDIRECTIONS = (">", ">>", "<")  # each with the file name after it, not the command's
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^\s*(```|~~~)")


def code_lines(text):
    """(line number, line) of every line in a code block: inside ``` or ~~~
    fences, or indented by four spaces or a tab outside them."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or line.startswith(("    ", "\t")):
            yield number, line


def commands(path, root=ROOT):
    """(where, argv) of each python command in the document's code blocks,
    argv being the words after `python`; `where` is the path from `root`
    and the line, 'README.md:12'. A line that cannot be split into words
    (an unbalanced quote) is returned with argv None."""
    where_of = lambda number: f"{path.relative_to(root)}:{number}"  # noqa: E731
    pending, first = "", None
    for number, line in code_lines(path.read_text()):
        text = line.strip()
        if text.startswith("$ "):
            text = text[2:]
        if first is None:
            first = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        logical, pending, start = pending + text, "", first
        first = None
        if "python" not in logical:
            continue
        try:
            lexer = shlex.shlex(logical, posix=True, punctuation_chars=";&|<>")
            lexer.whitespace_split = True
            words = list(lexer)
        except ValueError:
            yield where_of(start), None
            continue
        segment, redirected = [], False
        for word in words + [";"]:
            if redirected or word in REDIRECTIONS:
                redirected = word in REDIRECTIONS
                continue
            if word not in SEPARATORS:
                segment.append(word)
                continue
            while segment and ASSIGNMENT.match(segment[0]):
                segment.pop(0)  # MNIST_DATA_DIR=... python ...
            if segment and segment[0] in PYTHON:
                yield where_of(start), segment[1:]
            segment = []


def documented():
    return [(where, argv) for path in DOCUMENTS for where, argv in commands(path)]


def parses(parser, argv, known=False, plain=False):
    """What `argv` parses to (parse_known_args's pair if `known`; a plain
    argparse parser's parse_args if `plain`; else common.arguments.parse,
    presets included); None if it asks for --help. Rejected, with the
    parser's error line, if the parser refuses it (it exits with status 2)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            if known:
                return parser.parse_known_args(argv)
            if plain:
                return parser.parse_args(argv)
            return arguments.parse(parser, argv)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return None
        lines = stderr.getvalue().strip().splitlines()
        raise Rejected(lines[-1] if lines else f"exit status {exit_.code}") from None


class Rejected(Exception):
    """A documented command that its parser refuses."""


def train_script(model):
    try:
        return runs.script_for(model)
    except UsageError as error:
        raise Rejected(str(error)) from None


def script_parser(module):
    """A train.py's parser, named as the user runs it."""
    parser = module.make_parser()
    parser.prog = f"python {Path(module.__file__).relative_to(ROOT)}"
    return parser


def check_training(model, argv):
    """The arguments a sweep or the bench passes on to the model's train.py."""
    parses(script_parser(train_script(model)), ["--model", model, *argv])


def reference_parser(path):
    """The parser of a bench/ref_*.py script: bench/harness.py's, which the
    reference loops use (importing the script itself would train)."""
    if "from harness import" not in path.read_text():
        raise Rejected(f"{path.relative_to(ROOT)} does not take its options from bench/harness.py")
    spec = importlib.util.spec_from_file_location("harness", ROOT / "bench" / "harness.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    return harness.make_parser(path.name, epochs=1)


def check_module(module_name, argv):
    if module_name == "common.experiments":
        if argv[:1] in (["-h"], ["--help"]):
            return
        if not argv or argv[0] not in EXPERIMENTS:
            raise Rejected(f"python -m common.experiments: no experiment "
                           f"{argv[0] if argv else ''!r} (choose from {', '.join(EXPERIMENTS)})")
        module_name, argv = EXPERIMENTS[argv[0]], argv[1:]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise Rejected(f"no module {module_name}") from None
    if not hasattr(module, "make_parser"):
        raise Rejected(f"{module_name} has no make_parser(): this test cannot check it")
    if module_name.endswith(("experiments.seeds", "experiments.lr_sweep")):
        parsed = parses(module.make_parser(), argv, known=True)
        if parsed is None:  # --help
            return
        args, rest = parsed
        try:
            sweep.refuse(rest, module.set_by_the_sweep(args))
        except UsageError as error:
            raise Rejected(str(error)) from None
        check_training(args.model, rest)
        return
    parses(module.make_parser(), argv)


def check(argv):
    """Raise Rejected unless the python command `argv` (the words after
    `python`) parses; return whether it is ours (checked) at all."""
    if argv[:1] == ["-m"]:
        if len(argv) < 2:
            raise Rejected("python -m without a module")
        if argv[1].split(".")[0] not in OURS:
            return False  # python -m venv, pytest, pip
        check_module(argv[1], argv[2:])
        return True
    if not argv or argv[0].startswith("-"):
        return False  # python -c ..., an interpreter
    script = ROOT / argv[0]
    if not script.is_file() or script.suffix != ".py":
        raise Rejected(f"no script {argv[0]} in the repository")
    if script.parent.name == "bench" and script.name.startswith("ref_"):
        parses(reference_parser(script), argv[1:], plain=True)
        return True
    module = importlib.import_module(".".join(script.relative_to(ROOT).with_suffix("").parts))
    if not hasattr(module, "make_parser"):
        raise Rejected(f"{argv[0]} has no make_parser(): this test cannot check it")
    args = parses(script_parser(module), argv[1:])
    if args is not None and script == ROOT / "bench" / "speed.py":
        check_training(args.model, [])
        for variant in args.variant or []:
            check_training(args.model, shlex.split(variant))
    return True


COMMANDS = documented()


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_the_documented_command_parses(where, argv):
    assert argv is not None, f"{where}: the command cannot be split into words (a quote?)"
    try:
        check(argv)
        problem = None
    except Rejected as error:
        problem = str(error)
    if problem:
        pytest.fail(f"{where}: `python {shlex.join(argv)}` does not parse: {problem}",
                    pytrace=False)


def test_the_documents_show_the_commands_that_matter():
    """The extraction finds the README's commands, and each kind is checked
    somewhere (so that this test cannot pass by finding nothing)."""
    shown = {" ".join(argv) for _, argv in COMMANDS if argv}
    for command in ("gan_keras/train.py --epochs 2000", "vae_keras/train.py --epochs 1000",
                    "-m pytest"):
        assert command in shown, f"README.md no longer shows `python {command}`"
    for kind in ("gan_keras/train.py", "vae_keras/train.py", "-m common.evaluation.evaluate",
                 "-m common.evaluation.sample", "-m common.evaluation.compare",
                 "bench/speed.py", "-m common.experiments seeds",
                 "-m common.experiments lr-sweep", "bench/parity.py",
                 "bench/ref_dcgan.py"):
        assert any(command.startswith(kind) for command in shown), f"no `python {kind}` shown"


@pytest.mark.parametrize("argv, error", [
    ("gan_keras/train.py --epochs 2000 --no-such-option", "unrecognized arguments"),
    ("vae_keras/train.py --model mlp_vae --preset report000", "has no preset"),
    ("gan_keras/train.py --model dcgan --gamma 0.1", "not an option of dcgan"),
    ("-m common.evaluation.sample RUN_DIR", "required"),
    ("-m common.evaluation.compare RUN_DIR --iw-samples many", "expected a whole number"),
    ("-m common.experiments seeds --model dcgan --seeds 1 2 --epochs 0", "expected a whole number"),
    ("-m common.experiments seeds --model dcgan --seed 4", "sets --seed itself"),
    ("-m common.experiments lr-sweep --model vaegan --lr 0.1", "sets --lr itself"),
    ("bench/parity.py --model mlp_gan", "invalid choice"),
    ("-m common.experiments fit", "no experiment"),
    ("bench/speed.py --model dcgan --variant '--precision fp8'", "invalid choice"),
    ("bench/speed.py --model nonet", "no script builds"),
    ("bench/ref_dcgan.py --images many", "invalid int value"),
    ("bench/ref_gan.py", "no script"),
])
def test_a_wrong_command_is_caught(argv, error):
    with pytest.raises(Rejected, match=error):
        check(shlex.split(argv))


def test_commands_are_found_in_fences_and_indented_blocks_not_in_prose(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Run `python gan_keras/train.py --bad` in prose: not a block.\n\n"
                    "```sh\n$ python gan_keras/train.py --epochs 3 \\\n"
                    "    --seed 1   # a comment\n"
                    "pip install x && python bench/speed.py --images 512\n"
                    "MNIST_DATA_DIR=DIR python vae_keras/train.py > log.txt\n"
                    "git log | head\n```\n\n"
                    "    python -m common.evaluation.evaluate RUN_DIR\n")
    assert list(commands(page, tmp_path)) == [
        ("page.md:4", ["gan_keras/train.py", "--epochs", "3", "--seed", "1"]),
        ("page.md:6", ["bench/speed.py", "--images", "512"]),
        ("page.md:7", ["vae_keras/train.py"]),
        ("page.md:11", ["-m", "common.evaluation.evaluate", "RUN_DIR"])]


PATHS_UP = re.compile(r"(?<![\w.])((?:\.\./)+[\w.\-/]*)")  # ../x, ../../y/z
LINK = re.compile(r"\]\(([^)#\s]*)(?:#[^)\s]*)?\)")  # a Markdown link's target (and #part)


def outside(line, document):
    """The paths of a line of `document` that leave the repository: a
    link's target from the document's folder, every other path going up
    (in a command, a code span or prose) from the repository's root, where
    the commands run; an absolute path into the folder the checkout is in."""
    found = [target for target in LINK.findall(line)
             if target and "://" not in target and not (document.parent / target).resolve()
             .is_relative_to(ROOT)]
    rest = LINK.sub("]()", line)
    found += [path for path in PATHS_UP.findall(rest)
              if not (ROOT / path).resolve().is_relative_to(ROOT)]
    beside = str(ROOT.parent) + "/"
    return found + [word for word in rest.split() if beside in word]


def test_no_document_names_a_path_outside_the_repository():
    """What a user reads names nothing outside the checkout (the project's
    development machines have more beside it than a user's)."""
    found = [f"{path.relative_to(ROOT)}:{number}: {named}"
             for path in DOCUMENTS + [ROOT / "outputs" / "README.md"]
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for named in outside(line, path)]
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_a_path_outside_the_repository_is_found():
    docs = ROOT / "docs" / "page.md"
    readme = ROOT / "README.md"
    assert outside("python bench/speed.py --data-dir ../shared/data/mnist", readme) == [
        "../shared/data/mnist"]
    assert outside("as `--data-dir ../shared/data/mnist` in prose", docs) == [
        "../shared/data/mnist"]
    assert outside("see [the README](../README.md) and [a part](../README.md#test)", docs) == []
    assert outside("see [elsewhere](../../notes.md)", docs) == ["../../notes.md"]
    assert outside("see ../README.md", readme) == ["../README.md"]
    assert outside(f"read {ROOT.parent}/shared/SPEC.md.", docs) == [
        f"{ROOT.parent}/shared/SPEC.md."]


ANCHORED_LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)")  # [text](file#heading)


def slug(heading):
    """A heading's anchor as GitHub makes it: lower case, punctuation but
    hyphens and underscores dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path):
    """The anchors of a Markdown file's headings (not those in code fences)."""
    anchors, fenced = set(), False
    for line in path.read_text().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            anchors.add(slug(line.lstrip("#")))
    return anchors


def broken_links(path, root=ROOT):
    """The links of a document whose file, or heading, does not exist."""
    broken = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for target, anchor in ANCHORED_LINK.findall(line):
            if "://" in target or target.startswith("mailto:"):
                continue
            linked = (path.parent / target).resolve() if target else path
            if not linked.exists():
                broken.append(f"{path.relative_to(root)}:{number}: {target} does not exist")
            elif anchor and linked.suffix == ".md" and anchor not in headings(linked):
                broken.append(f"{path.relative_to(root)}:{number}: {target}#{anchor}: "
                              f"no such heading")
    return broken


def test_every_link_of_the_readme_and_the_docs_resolves():
    found = [broken for path in DOCUMENTS for broken in broken_links(path)]
    assert not found, "\n".join(found)


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n## Both kinds of CPU\n```\n# not a heading\n```\n"
                    "[ok](page.md#both-kinds-of-cpu) [ok](#a-page) [gone](other.md) "
                    "[no heading](page.md#not-a-heading) [web](https://example.org/x.md)\n")
    assert broken_links(page, tmp_path) == ["page.md:6: other.md does not exist",
                                  "page.md:6: page.md#not-a-heading: no such heading"]


def test_the_readme_is_a_front_door_of_at_most_150_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
