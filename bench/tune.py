"""`python -m bench.tune --suite NAME --method M --metric fid` (bench/tuning/cli.py); `bench.tune(...)` from
Python is bench.tuning.choices.tune (one method's search, or several methods' or one more parameter's
comparison at their optima), callable also through this module."""
import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from bench.tuning.choices import tune
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    from bench.tuning.cli import main
    sys.exit(main())
