"""The command lines' shared parts, for every command of the project: the
parser (errors on one line, exit status 2), the number types its options
take, and parsing with presets. Nothing of the project is imported here, so
every module may use it."""
import argparse

# What an option is to a training run, its `role` where it is declared
# (Parser.add_argument): it DEFINES the run (a resumed command must give the
# same), CONTROLS it (may change when the run resumes: how long, how often),
# is a PATH (controls it; relative to the repository in the command that
# resumes the run), a SPEED setting (controls it; left out of that command:
# each process takes its device type's, docs/speed.md), or holds for ONCE,
# this invocation (left out of it too). config.json, the resume check and
# the resume command read the roles (common/cli.py, common/rundir.py).
DEFINES, CONTROLS, PATH, SPEED, ONCE = "defines", "controls", "path", "speed", "once"


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line instead of a usage block, no
    abbreviated options (a prefix that works today may not tomorrow), and
    each option's role."""

    presets = None  # {model: {preset: {argument: default}}}: see parse

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, formatter_class=_HelpFormatter, **kwargs)

    def add_argument(self, *args, role=DEFINES, **kwargs):
        action = super().add_argument(*args, **kwargs)
        action.role = role
        return action

    def options(self, *roles):
        """The names (dest) of the options of these roles."""
        return frozenset(action.dest for action in self._actions
                         if action.option_strings and action.role in roles)

    def run_controls(self):
        """The options a resumed run may change."""
        return self.options(CONTROLS, PATH, SPEED, ONCE)

    def error(self, message):  # message: text, or a UsageError to show as one
        self.exit(2, f"{self.prog}: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each default, except the ones that mean "not set" and the ones
    whose help already says it in words."""

    def _get_help_string(self, action):
        not_set = action.default is None or action.default is False  # 0 is a real default
        if not_set or "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


def _number(convert, valid, expected):
    """An argparse type: `convert` the text, then check `valid(value)`."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number >= 0")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
unit_interval = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
seed = _number(int, lambda v: 0 <= v < 2**31, "0 <= seed < 2**31")


def epoch_list(text):
    """An argparse type: epochs separated by commas ("5,50,100"), or "none"."""
    if text.strip().lower() == "none":
        return ()
    try:
        epochs = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epochs separated by commas (5,50,100) or "
                                         f"none, got {text!r}") from None
    if epochs[0] < 1:
        raise argparse.ArgumentTypeError(f"expected epochs >= 1, got {text}")
    return epochs


def parse(parser, argv=None):
    """Parse `argv`. With presets, parse twice: the chosen (or the model's
    first) preset's values become the defaults. An option with no default
    of its own that the chosen preset does not set belongs to another model,
    and giving it is an error."""
    args = parser.parse_args(argv)
    if not parser.presets:
        return args
    choices = parser.presets[args.model]
    preset = args.preset or next(iter(choices))
    if preset not in choices:
        parser.error(f"argument --preset: {args.model} has no preset {preset!r} "
                     f"(choose from {', '.join(choices)})")
    governed = {key for named in parser.presets.values() for values in named.values()
                for key in values}
    for key in sorted(governed - set(choices[preset])):
        if parser.get_default(key) is None and getattr(args, key) is not None:
            parser.error(f"argument --{key.replace('_', '-')}: not an option of {args.model}")
    parser.set_defaults(**choices[preset])
    args = parser.parse_args(argv)
    args.preset = preset
    return args
