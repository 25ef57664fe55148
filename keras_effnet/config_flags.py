"""Command-line flags generated from configuration dataclasses (issue 21, DESIGN §4.12).

A configuration field declares its flag in its metadata with `option`:

    image_size: int | None = option(
        None, "Input side.", section="data", auto="the variant's native resolution", legacy_auto=(0,)
    )

`define(config_class)` turns every such field into an absl flag (help text,
`--help` section, choices, required, the flag name where it differs from the
field) and `Flags.config()` builds the dataclass back from the parsed values.
Nested configurations (`ExperimentConfig` holds four sections) are walked.

"auto" is `None` in the dataclasses: the user writes `--x=auto` (also the
default shown by `--help`), and the old spellings in `legacy_auto` (-1 or 0)
still parse to None, from the command line (`parse`) and from an old
config.json (`normalize`). Enum fields whose choices include "auto" keep the
string.

Importing this module imports absl's flags only: the configuration modules
import it, and `--help` must answer before TensorFlow is imported.
"""

import dataclasses
import types
import typing

from absl import flags

AUTO_WORD = "auto"
# `--help` groups, in this order. absl groups flags by the module that defines them, so each
# section is registered as the pseudo-module `keras_effnet.config_flags.<section>`.
SECTIONS = {
    "data": "the dataset and its input pipeline.",
    "model": "the network: variant, scaling, start weights, regularization.",
    "recipe": "optimizer, learning-rate schedule, label smoothing, EMA.",
    "augmentation": "augmentation and progressive learning (EfficientNetV2).",
    "run": "the run directory, length, devices and console.",
    "study": "the models of the study.",
    "grid": "the alpha/beta/gamma grid and its candidates.",
    "measurement": "how each cell is trained and measured (study and grid-search).",
    "export": "the exported file: data, quantization, guard, verification, fine-tuning.",
}
# Old flag names (aliases) are registered here, outside every job's sections, so a job's
# `--help` lists only the new name and `--helpfull` shows the alias.
ALIAS_MODULE = f"{__name__}.aliases"


def option(
    default,
    help,  # noqa: A002  (absl's and dataclasses' word for it)
    *,
    section,
    auto=None,
    legacy_auto=(),
    flag=None,
    choices=None,
    required=False,
    old_names=(),
):
    """A dataclass field with its command-line flag described in its metadata.

    Args:
        default: the field's default (None for an "auto" field).
        help: one or two sentences for `--help`.
        section: the `--help` group, a key of `SECTIONS`.
        auto: what "auto" means, for a field whose None (or "auto" choice) is
            decided by the recipe or the dataset; `--help` appends it.
        legacy_auto: old numeric spellings of auto (-1, 0) that still mean None.
        flag: the flag's name where it differs from the field's.
        choices: the allowed strings of an enum field (shown by `--help`; the
            dataclass checks them).
        required: the flag must be given (its help then starts with "(required)").
        old_names: old flag names kept as aliases.
    """
    if section not in SECTIONS:
        raise ValueError(f"`section` must be one of {list(SECTIONS)}. Received: {section!r}")
    metadata = {
        "help": help,
        "section": section,
        "auto": auto,
        "legacy_auto": tuple(legacy_auto),
        "flag": flag,
        "choices": tuple(choices) if choices else None,
        "required": required,
        "old_names": tuple(old_names),
    }
    return dataclasses.field(default=default, metadata=metadata)


def module_name(section):
    """The pseudo-module absl files a section's flags under (see `SECTIONS`)."""
    return f"{__name__}.{section}"


def heading(name):
    """The `--help` heading of a pseudo-module name ("data: the dataset ..."), or None."""
    section = name.rpartition(".")[2]
    if name == module_name(section) and section in SECTIONS:
        return f"{section}: {SECTIONS[section]}"
    return None


def is_option(field):
    """Whether a dataclass field declares a flag (`option`)."""
    return "section" in field.metadata


def _nested(field):
    return dataclasses.is_dataclass(field.type) or dataclasses.is_dataclass(field.default)


def _section_class(field):
    return field.type if dataclasses.is_dataclass(field.type) else type(field.default)


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """One generated flag: its name, where its value goes, and the field behind it."""

    name: str
    path: tuple  # ("data", "image_size") for a nested config, ("batch_size",) for a flat one.
    field: dataclasses.Field

    @property
    def meta(self):
        return self.field.metadata


def specs(config_class):
    """The `FlagSpec` of every option field of `config_class`, nested sections walked."""
    out = []
    for field in dataclasses.fields(config_class):
        if _nested(field):
            out += [
                dataclasses.replace(s, path=(field.name, *s.path))
                for s in specs(_section_class(field))
            ]
        elif is_option(field):
            out.append(FlagSpec(field.metadata["flag"] or field.name, (field.name,), field))
    return out


def flag_fields(config_class):
    """{flag name: (section attribute, field)} of a nested configuration."""
    return {s.name: s.path for s in specs(config_class)}


def _base_type(field):
    """int, float, bool, str or tuple: the field's type without `| None`."""
    kind = field.type
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    if kind in (int, float, bool, str, tuple):
        return kind
    default = field.default
    return type(default) if default is not None else str


def _legacy_to_none(field, value):
    legacy = field.metadata.get("legacy_auto", ())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return None if value in legacy else value


def normalize(config_class, values):
    """`values` ({field: value}) with old auto spellings (-1, 0, "auto") turned into None.

    Used on values that come from outside: an old config.json, a dict of flag values.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    out = dict(values)
    for name, value in values.items():
        field = fields.get(name)
        if field is None or not is_option(field) or field.default is not None:
            continue  # Only None-is-auto fields have old spellings.
        if field.metadata["auto"] is None:
            continue
        if isinstance(value, str) and value.strip().lower() == AUTO_WORD:
            out[name] = None
        else:
            out[name] = _legacy_to_none(field, value)
    return out


class _AutoParser(flags.ArgumentParser):
    """Parses "auto" (and the field's old spellings, -1 or 0) to None, else as `base`."""

    def __init__(self, base, field):
        self.base = base
        self.field = field
        kind = {"int": "an integer", "float": "a number", "bool": "true or false"}
        self.syntactic_help = f"{AUTO_WORD} or {kind.get(base.flag_type(), 'a value')}"

    def parse(self, argument):
        if argument is None:
            return None
        if isinstance(argument, str) and argument.strip().lower() == AUTO_WORD:
            return None
        return _legacy_to_none(self.field, self.base.parse(argument))

    def flag_type(self):
        return self.base.flag_type()


class _AutoFlag(flags.Flag):
    """A flag whose None value is shown (and serialized) as "auto"."""

    def _get_parsed_value_as_string(self, value):
        if value is None:
            return repr(AUTO_WORD)
        return super()._get_parsed_value_as_string(value)

    def _serialize(self, value):
        if value is None:
            return f"--{self.name}={AUTO_WORD}"
        return super()._serialize(value)


def _help(field, required):
    meta = field.metadata
    text = meta["help"]
    if meta["choices"]:
        text = f"<{'|'.join(meta['choices'])}>: {text}"
    if meta["auto"]:
        text += f" auto = {meta['auto']}."
    if required:
        text = f"(required) {text}"
    return text


def _make_flag(spec, default, required):
    field, meta = spec.field, spec.meta
    kind = _base_type(field)
    text = _help(field, required)
    serializer = None
    # Choices are shown in the help and checked by the dataclass, whose error names the field
    # the same way from a flag, a config.json or Python.
    if kind is bool:
        parser = flags.BooleanParser()
    elif kind is int:
        parser = flags.IntegerParser()
    elif kind is float:
        parser = flags.FloatParser()
    elif kind is tuple:
        parser, serializer = flags.ListParser(), flags.CsvListSerializer(",")
        default = list(default)
    else:
        parser = flags.ArgumentParser()
    boolean = kind is bool
    if meta["auto"] and field.default is None:  # None is auto (a job may default to a value).
        parser = _AutoParser(parser, field)
        return _AutoFlag(parser, serializer, spec.name, default, text, boolean=boolean)
    return flags.Flag(parser, serializer, spec.name, default, text, boolean=boolean)


class Flags:
    """The flags `define` generated; `config()` builds the configuration back."""

    def __init__(self, config_class, specs_, flag_values=flags.FLAGS):
        self.config_class = config_class
        self.specs = specs_
        self.flag_values = flag_values

    def values(self):
        """{flag name: parsed value} (lists as tuples, "" as None for optional paths)."""
        out = {}
        for spec in self.specs:
            value = self.flag_values[spec.name].value
            if isinstance(value, list):
                value = tuple(value)
            if value == "" and spec.field.default is None:
                value = None  # --weights= or --data_dir=: none.
            out[spec.name] = value
        return out

    def field_values(self):
        """{field: value} of a flat configuration (`values` keyed by field name)."""
        return {s.path[-1]: v for s, v in zip(self.specs, self.values().values())}

    def config(self, **extra):
        """The configuration of the parsed flags (plus `extra` fields of a flat one)."""
        return build(self.config_class, self.values(), **extra)


def build(config_class, values, **extra):
    """`config_class` from {flag name: value}; absent flags keep their defaults.

    Unknown flag names raise ValueError. Old auto spellings (-1, 0) become None.
    """
    by_name = {s.name: s for s in specs(config_class)}
    nested, flat = {}, dict(extra)
    for name, value in values.items():
        if name not in by_name:
            raise ValueError(f"`flag` must be one of {sorted(by_name)}. Received: flag={name!r}")
        path = by_name[name].path
        if len(path) == 1:
            flat[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1]] = value
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    for section, updates in nested.items():
        cls = _section_class(fields[section])
        flat[section] = cls(**normalize(cls, updates))
    return config_class(**normalize(config_class, flat))


def define(config_class, *, defaults=None, only=None, flag_values=flags.FLAGS):
    """Defines one absl flag per option field of `config_class`; returns a `Flags`.

    Args:
        config_class: a configuration dataclass (nested sections are walked).
        defaults: a subclass of a flat `config_class` whose field defaults
            replace the fields' own (GridConfig's output_dir is not
            StudyConfig's), or {flag name: default}; a required flag given a
            default becomes optional.
        only: flag names to define (a job that exposes a subset), None = all.
        flag_values: the absl FlagValues to define them in.
    """
    by_field = dataclasses.is_dataclass(defaults)
    if by_field:
        defaults = {f.name: f.default for f in dataclasses.fields(defaults)}
    defaults = defaults or {}
    chosen = [s for s in specs(config_class) if only is None or s.name in only]
    for spec in chosen:
        key = spec.path[-1] if by_field else spec.name
        # A job that gives a required field a default (quickstart's model_dir) makes it optional.
        required = spec.meta["required"] and key not in defaults
        default = None if required else defaults.get(key, spec.field.default)
        flag = _make_flag(spec, default, required)
        flags.DEFINE_flag(
            flag, flag_values, module_name=module_name(spec.meta["section"]), required=required
        )
        for old in spec.meta["old_names"]:
            flags.DEFINE_alias(old, spec.name, flag_values, module_name=ALIAS_MODULE)
    return Flags(config_class, chosen, flag_values)
