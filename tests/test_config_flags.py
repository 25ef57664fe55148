"""keras_effnet/config_flags.py: flags generated from the configuration dataclasses.

Every field of the train and study configurations is a flag with help and a
section; "auto" is None on both sides (`--x=auto`, the old -1 / 0 spellings, an
old config.json); a config survives a trip through its flags; a flag that does
not parse is one line and exit 2. Cheap: no TensorFlow work, one subprocess per
exit-code case.
"""

import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags

from keras_effnet import config_flags
from keras_effnet.study import GridConfig, MeasureSettings, StudyConfig
from keras_effnet.training import config as config_lib
from keras_effnet.training import sections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = (
    sections.DataConfig,
    sections.ModelConfig,
    sections.OptimizerConfig,
    sections.RunConfig,
    MeasureSettings,
)
TRAIN_SECTIONS = ("data", "model", "recipe", "augmentation", "run")
# Old numeric spellings of auto that config.json files and documented commands still hold.
LEGACY = {
    "image_size": "0",
    "crop_min_area": "-1",
    "progressive_stages": "0",
    "progressive_start_size": "0",
    "width": "0",
    "depth": "0",
    "dropout_rate": "-1",
    "drop_connect_rate": "-1",
    "head_epochs": "-1",
    "base_lr": "-1",
    "lr_batch_size": "0",
    "warmup_epochs": "-1",
    "label_smoothing": "-1",
    "weight_decay": "-1",
    "ema_momentum": "-1",
    "bn_images": "-1",
}
AUTO_IS_NONE = (*LEGACY, "freeze_bn", "stem_strides", "epochs")


def _train_flags(argv):
    """(Flags, FlagValues) of `keras-effnet train` parsed from `argv`, in a fresh FlagValues."""
    fv = flags.FlagValues()
    defined = config_flags.define(config_lib.ExperimentConfig, flag_values=fv)
    fv(["train", *argv])
    return defined, fv


@pytest.mark.parametrize("cls", [*CLASSES, StudyConfig, GridConfig], ids=lambda c: c.__name__)
def test_every_field_is_a_flag_with_help_and_a_section(cls):
    shared = {f.name for f in dataclasses.fields(MeasureSettings)}
    for field in dataclasses.fields(cls):
        if cls in (StudyConfig, GridConfig) and field.name in shared:
            continue  # MeasureSettings' flag, this job's default (GridConfig's epochs).
        meta = field.metadata
        assert config_flags.is_option(field), f"{cls.__name__}.{field.name} has no flag metadata"
        assert meta["help"].strip().endswith((".", ")")), (field.name, meta["help"])
        assert meta["section"] in config_flags.SECTIONS, field.name
        expected = {
            MeasureSettings: ("measurement",),
            StudyConfig: ("study",),
            GridConfig: ("grid",),
        }
        assert meta["section"] in expected.get(cls, TRAIN_SECTIONS), field.name


def test_auto_is_none_exactly_where_auto_has_a_meaning():
    by_flag = {s.name: s.field for s in config_flags.specs(config_lib.ExperimentConfig)}
    none_is_auto = {name for name, f in by_flag.items() if f.default is None and f.metadata["auto"]}
    assert none_is_auto == set(AUTO_IS_NONE)
    for name, field in by_flag.items():
        if field.metadata["auto"] and field.default is not None:  # An enum with an auto choice.
            assert field.default == "auto" and name in (
                "recipe",
                "optimizer",
                "lr_schedule",
                "augment",
                "progressive",
                "strategy",
                "eval_split",
            ), name
    # `flag` renames where the field's name is not the command-line name.
    assert {
        n: s.path
        for n, s in ((s.name, s) for s in config_flags.specs(config_lib.ExperimentConfig))
        if n != s.path[-1]
    } == {
        "model": ("model", "name"),
        "optimizer": ("optimizer", "name"),
        "lr_schedule": ("optimizer", "schedule"),
    }


def test_defaults_are_auto_and_build_the_default_config():
    defined, fv = _train_flags(["--model_dir=r"])
    for name in AUTO_IS_NONE:
        assert fv[name].value is None and fv[name].default_as_str == "'auto'", name
    assert defined.config() == config_lib.ExperimentConfig().replace(run={"model_dir": "r"})


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_auto_and_the_old_spelling_parse_to_none(name):
    _, fv = _train_flags(["--model_dir=r", f"--{name}=auto"])
    assert fv[name].value is None
    _, fv = _train_flags(["--model_dir=r", f"--{name}={LEGACY[name]}"])
    assert fv[name].value is None
    assert (
        config_lib.config_from_flags({name: float(LEGACY[name])}) == config_lib.ExperimentConfig()
    )


def test_a_tristate_bool_takes_auto_and_the_bool_spellings():
    for argv, expected in (
        ([], None),
        (["--freeze_bn=auto"], None),
        (["--freeze_bn"], True),
        (["--nofreeze_bn"], False),
        (["--freeze_bn=false"], False),
    ):
        _, fv = _train_flags(["--model_dir=r", *argv])
        assert fv["freeze_bn"].value is expected, argv


def test_values_are_still_numbers_and_bad_ones_name_the_flag():
    defined, fv = _train_flags(["--model_dir=r", "--image_size=96", "--bn_images=0"])
    config = defined.config()
    assert config.data.image_size == 96 and config.optimizer.bn_images == 0  # 0 = off, not auto.
    with pytest.raises(flags.IllegalFlagValueError, match="--image_size"):
        _train_flags(["--model_dir=r", "--image_size=big"])
    with pytest.raises(config_lib.ConfigError, match="progressive_stages"):
        config_lib.config_from_flags({"progressive_stages": -1})  # -1 was never its auto.


def _argv(config):
    """The command line of `config`: every flag, None as auto, lists comma-joined."""
    out = []
    for spec in config_flags.specs(type(config)):
        value = config
        for part in spec.path:
            value = getattr(value, part)
        if value is None:
            value = "auto" if spec.field.metadata["auto"] else ""
        elif isinstance(value, tuple):
            value = ",".join(value)
        out.append(f"--{spec.name}={value}")
    return out


def test_a_config_round_trips_through_its_flags():
    config = config_lib.ExperimentConfig().replace(
        data={"image_size": 96, "augment": "crop", "progressive": "on", "cache": False},
        model={
            "name": "b1",
            "width": 0.5,
            "freeze_bn": False,
            "head_epochs": 2,
            "weights": "w.keras",
        },
        optimizer={"recipe": "paper", "name": "sgd", "schedule": "constant", "bn_images": 0},
        run={"model_dir": "runs/x", "epochs": 3, "strategy": "cpu", "eval_split": "validation"},
    )
    defined, _ = _train_flags(_argv(config))
    assert defined.config() == config
    default = config_lib.ExperimentConfig().replace(run={"model_dir": "r"})
    assert _train_flags(_argv(default))[0].config() == default


@pytest.mark.parametrize("cls", [StudyConfig, GridConfig], ids=lambda c: c.__name__)
def test_measurement_flags_take_the_jobs_defaults_and_round_trip(cls):
    fv = flags.FlagValues()
    defined = config_flags.define(MeasureSettings, defaults=cls, flag_values=fv)
    fv(["study", "--threads=3", "--tflite_modes=fp16", "--data_dir="])
    values = defined.field_values()
    assert values["threads"] == 3 and values["tflite_modes"] == ("fp16",)
    assert values["data_dir"] is None and values["output_dir"] == cls().output_dir
    assert cls(**values).threads == 3


def test_an_old_config_json_with_numeric_autos_reads_as_none():
    old = config_lib.ExperimentConfig().to_dict()
    old["data"].update(image_size=0, crop_min_area=-1, progressive_stages=0)
    old["model"].update(width=0.0, depth=0.0, dropout_rate=-1.0, head_epochs=-1)
    old["optimizer"].update(base_lr=-1, lr_batch_size=0, ema_momentum=-1, bn_images=-1)
    assert config_lib.ExperimentConfig.from_dict(old) == config_lib.ExperimentConfig()
    # Numbers that are not old autos stay numbers: ema 0 and bn_images 0 mean off.
    old["optimizer"].update(ema_momentum=0.0, bn_images=0)
    read = config_lib.ExperimentConfig.from_dict(old).optimizer
    assert read.ema_momentum == 0.0 and read.bn_images == 0


def test_help_shows_auto_and_the_required_flag():
    fv = flags.FlagValues()
    config_flags.define(config_lib.ExperimentConfig, flag_values=fv)
    data = fv.module_help(config_flags.module_name("data"))
    run = fv.module_help(config_flags.module_name("run"))
    assert "--image_size: Input side. auto = 64 for images under 64 px" in data
    assert "(default: 'auto')" in data
    assert "--model_dir: (required) Run directory" in run


def _job(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_effnet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, named",
    [
        (["train", "--epochs=abc", "--model_dir=x"], "--epochs"),
        (["train"], "--model_dir"),
        (["train", "--model_dir=x", "--no_such_flag=1"], "no_such_flag"),
        (["study", "--num_threads=two"], "--num_threads"),
        (["grid-search", "--timing_statistic=mean"], "timing_statistic"),
        (["grid-search", "--order=random"], "order"),
        (["study", "--phis=1,x"], "phis"),
    ],
)
def test_a_flag_that_does_not_parse_is_one_line_and_exit_2(args, named):
    out = _job(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"keras-effnet {args[0]}: error: "), lines
    assert named in lines[0]


def test_a_job_can_define_a_subset_with_its_own_defaults():
    """quickstart's flags: a few train flags, its defaults, model_dir no longer required."""
    fv = flags.FlagValues()
    defined = config_flags.define(
        config_lib.ExperimentConfig,
        only=("image_size", "epochs", "model_dir"),
        defaults={"image_size": 64, "epochs": 8, "model_dir": "runs/q"},
        flag_values=fv,
    )
    assert sorted(fv) == ["epochs", "image_size", "model_dir"]
    fv(["quickstart"])
    config = defined.config()
    assert (config.data.image_size, config.run.epochs, config.run.model_dir) == (64, 8, "runs/q")
    fv(["quickstart", "--image_size=0"])  # Still an auto field: the old 0 reads as auto.
    assert defined.config().data.image_size is None


def test_every_export_flag_has_help_and_export_help_lists_it():
    """ExportOptions' flags come from its metadata; `keras-effnet export --help` lists them."""
    from keras_effnet.export.options import ExportOptions

    names = []
    for field in dataclasses.fields(ExportOptions):
        if not config_flags.is_option(field):
            continue  # Python-only (test_split, seed).
        meta = field.metadata
        assert meta["help"].strip().endswith((".", ")")), (field.name, meta["help"])
        assert meta["section"] == "export", field.name
        names.append(meta["flag"] or field.name)
    assert len(names) == 21 and {"num_threads", "metadata", "qat_learning_rate"} <= set(names)
    out = _job("export", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    for name in names:
        assert f"--{name}:" in out.stdout or f"--[no]{name}:" in out.stdout, name
    assert "--threads:" not in out.stdout  # The old name: an alias, listed by --helpfull only.


def test_export_flags_build_its_options_with_the_special_values():
    from keras_effnet.export.options import ExportOptions

    fv = flags.FlagValues()
    defined = config_flags.define(ExportOptions, flag_values=fv)
    fv(["export"])
    assert defined.config() == ExportOptions()
    fv(["export", "--max_accuracy_drop=none", "--threads=3", "--nometadata", "--dataset=digits"])
    options = defined.config()
    assert options.max_accuracy_drop is None and options.threads == 3
    assert options.add_metadata is False and options.dataset == "digits"
    assert options.labels is None and options.data_dir is None
    fv(["export", "--max_accuracy_drop=0.5", "--qat_learning_rate=1e-4"])
    assert defined.config().max_accuracy_drop == 0.5
    assert defined.config().learning_rate == 1e-4


@pytest.mark.parametrize(
    "arg, named",
    [
        ("--max_accuracy_drop=lots", "max_accuracy_drop"),
        ("--num_threads=0", "--num_threads"),
        ("--io_type=int4", "io_type"),
        ("--prune_schedule=cubic", "prune_schedule"),
        ("--strategy=tpu", "strategy"),
        ("--num_calibration=x", "--num_calibration"),
    ],
)
def test_a_bad_export_value_is_one_line_and_exit_2(arg, named):
    out = _job("export", "--model_path=missing.keras", "--output=o.tflite", arg)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-effnet export: error: "), lines
    assert named in lines[0]
