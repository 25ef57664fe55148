"""tf.distribute strategies, TF_CONFIG checking, logical CPU devices, precision.

Nothing here touches TensorFlow devices at import time; `split_cpu` must be
called before TensorFlow initializes its devices (first op, first strategy).
"""

import json
import os

import keras
import tensorflow as tf

from keras_effnet.errors import ConfigError


def split_cpu(count):
    """Splits the first physical CPU into `count` logical devices.

    Lets MirroredStrategy run `count` real replicas on a CPU-only machine
    (tests, laptops). Must run before TensorFlow initializes its devices.

    Raises:
        ValueError: `count` is not a positive int.
        RuntimeError: TensorFlow's devices were already initialized with a
            different configuration.
    """
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"`cpu_devices` must be a positive int. Received: cpu_devices={count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as e:
        raise RuntimeError(
            f"cpu_devices={count} must be set before TensorFlow initializes its devices "
            "(use it from a fresh process, e.g. `keras-effnet train --cpu_devices`)."
        ) from e


def parse_tf_config(raw=None):
    """Parses and checks a TF_CONFIG value for MultiWorkerMirroredStrategy.

    Args:
        raw: the JSON string; None reads the TF_CONFIG environment variable.

    Returns:
        A dict with "cluster" and "task" (type, index) as TensorFlow expects.

    Raises:
        ValueError: missing, not JSON, or inconsistent (naming TF_CONFIG and
            the problem).
    """
    if raw is None:
        raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        raise ConfigError(
            "strategy=multi_worker needs the TF_CONFIG environment variable. Received: "
            'TF_CONFIG unset or empty; expected e.g. {"cluster": {"worker": ["host1:port", '
            '"host2:port"]}, "task": {"type": "worker", "index": 0}}'
        )

    def bad(problem):
        return ConfigError(f"Malformed TF_CONFIG: {problem}. Received: TF_CONFIG={raw!r}")

    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise bad(f"not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(config, dict):
        raise bad("expected a JSON object")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise bad('"cluster" must be a non-empty object of job name -> list of "host:port"')
    for job, addresses in cluster.items():
        if job not in ("chief", "worker", "evaluator", "ps"):
            raise bad(f'unknown job {job!r} in "cluster" (expected chief, worker)')
        if not isinstance(addresses, list) or not addresses:
            raise bad(f'cluster[{job!r}] must be a non-empty list of "host:port"')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise bad(f'cluster[{job!r}] entry {address!r} is not "host:port"')
    if "ps" in cluster:
        raise bad('a "ps" job means ParameterServerStrategy, not multi_worker')
    if not isinstance(task, dict):
        raise bad('"task" must be an object like {"type": "worker", "index": 0}')
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise bad(f'task type {task_type!r} is not a job of "cluster" {sorted(cluster)}')
    if isinstance(index, bool) or not isinstance(index, int):
        raise bad(f"task index {index!r} is not an int")
    if not 0 <= index < len(cluster[task_type]):
        raise bad(
            f"task index {index} is out of range for {len(cluster[task_type])} {task_type}(s)"
        )
    return config


def task_info(strategy):
    """Returns (task_type, task_id, is_chief) for the current process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0, True
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type, task_id, task_type == "chief"
    return task_type, task_id, task_type == "worker" and task_id == 0


def make_strategy(name="auto"):
    """Creates a tf.distribute strategy.

    Args:
        name: "auto" (MirroredStrategy over all visible GPUs if there are
            more than one, else OneDeviceStrategy on the GPU or CPU),
            "mirrored" (all GPUs, or all logical CPUs if there are no GPUs),
            "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG),
            "one_device" (first GPU, else CPU) or "cpu".

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name == "multi_worker":
        parse_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    raise ConfigError(
        "`strategy` must be one of auto, mirrored, multi_worker, one_device, cpu. "
        f"Received: strategy={name!r}"
    )


def strategy_name(strategy):
    """A short description such as "MirroredStrategy(2 replicas)"."""
    name = type(strategy).__name__
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"  # Its class is CollectiveAllReduceStrategy.
    return f"{name}({strategy.num_replicas_in_sync} replicas)"


class precision_policy:
    """Context manager: sets the Keras dtype policy, restores the previous one."""

    def __init__(self, precision):
        self.precision = precision
        self._previous = None

    def __enter__(self):
        self._previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        return self

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self._previous)
        return False
