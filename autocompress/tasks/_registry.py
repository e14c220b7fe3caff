"""Tasks by name: the built-in registry, or a user's own ``package.module:function``.

Naming a user task *runs that user's code* (the module is imported and the function called
with the task settings). Everything else in a study file is data and is never executed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from autocompress.errors import AutocompressError, ConfigError, nearest
from autocompress.registry import Registry
from autocompress.tasks._task import Task

TaskBuilder = Callable[..., Task]

TASKS: Registry[TaskBuilder] = Registry("task")


def register_task(name: str) -> Callable[[TaskBuilder], TaskBuilder]:
    """Decorator: register a function ``(**settings) -> Task`` under ``name``."""
    return TASKS.register(name)


def get_task(name: str, **settings: Any) -> Task:
    """The task called ``name``, built with its ``settings``.

    ``name`` is a registered task (``autocompress.tasks.TASKS.names()``) or
    ``"package.module:function"``: a user's function returning a :class:`Task`.

    Example::

        task = get_task("mnist-lenet5", data_dir="~/data/mnist")
        task = get_task("my_project.tasks:speech_task", root="/data/speech")
    """
    builder = _import_builder(name) if ":" in name else TASKS.get(name)
    _check_settings(name, builder, settings)
    try:
        task = builder(**settings)
    except AutocompressError:
        raise
    except Exception as e:  # the user's task function failed: one clear line, cause kept
        raise ConfigError(
            f"task {name!r} failed to build: {type(e).__name__}: {e} (run with --debug for the traceback)"
        ) from e
    if not isinstance(task, Task):
        raise ConfigError(
            f"task {name!r} must return an autocompress.tasks.Task, got {type(task).__name__}"
        )
    return task


def is_user_task(name: str) -> bool:
    """``package.module:function``: naming it runs that user's code."""
    return ":" in name


def check_builtin_task(name: str, where: str) -> None:
    """Raise unless ``name`` is a registered (built-in or registered-in-process) task; never imports."""
    if is_user_task(name):
        raise ConfigError(
            f"{where}: {name!r} is user code (package.module:function); a policy file never runs code: "
            f"pass --task {name} (or --study STUDY.yaml) to run it knowingly")
    if name not in TASKS.names():
        raise ConfigError(f"{where}: unknown task {name!r}; {nearest(name, TASKS.names())}")


def _import_builder(ref: str) -> TaskBuilder:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"a user task is named 'package.module:function', got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"cannot import module {module_name!r} of user task {ref!r}: {e}; "
            "is it installed or on PYTHONPATH?"
        ) from e
    except AutocompressError:
        raise
    except Exception as e:  # the user's module failed while importing: say where, keep the cause
        raise ConfigError(
            f"importing module {module_name!r} of user task {ref!r} failed: {type(e).__name__}: {e} "
            "(run with --debug for the traceback)"
        ) from e
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ConfigError(f"module {module_name!r} has no function {attr!r} (user task {ref!r})")
    return builder  # type: ignore[no-any-return]


def _check_settings(name: str, builder: TaskBuilder, settings: dict[str, Any]) -> None:
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ConfigError(
            f"task {name!r} has no setting(s) {unknown}; allowed settings: {allowed or 'none'}"
        )
