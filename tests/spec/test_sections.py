import json

import pytest

from bench.spec.sections import RunSpec
from bench.spec.hashing import from_dict, stable_hash, to_dict
from bench.suites.cells import SUITES


def test_every_suite_spec_round_trips_through_json():
    for suite in SUITES.values():
        for cell in suite.build():
            back = from_dict(RunSpec, json.loads(json.dumps(to_dict(cell.spec))))
            assert back == cell.spec and stable_hash(back) == stable_hash(cell.spec)


def test_unknown_spec_key_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid keys: .*'sample'"):
        from_dict(RunSpec, {"sampel": {}})
