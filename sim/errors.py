"""Error types. Every message names the file/key/shape that was wrong and what was expected."""

from __future__ import annotations


class SimError(Exception):
    """Base class for all demoforge errors.

    Picklable whatever a subclass's ``__init__`` takes (errors cross process boundaries: worker
    pools, Ray, Hydra's joblib launcher): rebuilt from the message and the instance attributes.
    """

    def __reduce__(self):
        return _rebuild, (type(self), str(self), dict(self.__dict__))


def _rebuild(cls: type[SimError], message: str, state: dict) -> SimError:
    err = Exception.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigError(SimError):
    """A configuration value is missing, unknown or out of range."""


class UnknownNameError(ConfigError):
    """A registry lookup (task, robot, format, level, ...) failed."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(self.known)}")


class SchemaError(SimError):
    """Data does not match the Episode/feature schema (missing field, wrong shape, NaN, ...)."""


class FormatError(SimError):
    """A file on disk is corrupt or not in the expected format."""


class PhysicsError(SimError):
    """The simulation became unstable (NaN/inf state, MuJoCo warnings)."""


class RenderError(SimError):
    """No working OpenGL backend, or a camera/resolution problem."""


class ReachError(SimError):
    """A target pose cannot be reached by the robot's arm."""


class OutputExistsError(ConfigError):
    """The output path exists and overwriting was not requested."""


class BridgeError(SimError):
    """Hardware bridge failure: lost link, timeout, protocol violation."""


class SafetyError(BridgeError):
    """A safety rule stopped the robot (e-stop latched, watchdog, invalid command)."""


class PlanError(SimError):
    """A plan source cannot make a plan for this scene; ``cause`` is the failure-count key.

    Causes used by the generator's report: ``no_grasp``, ``object_mismatch``, ``ik_failed``,
    ``unreachable``; a source may add its own.
    """

    def __init__(self, message: str, cause: str = "plan_failed"):
        super().__init__(message)
        self.cause = cause


class OutputWriteError(SimError):
    """The output location cannot be written: disk full, quota, read-only or no permission."""
