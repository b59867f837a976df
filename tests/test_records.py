"""The typed run record: JSON round trip, reading version-1 records, status transitions, liveness."""
import dataclasses
import os

import pytest

import engine
from engine.methods import METHODS, MethodInfo, _check_defaults

CLASS_1 = engine.ForgetSpec(classes=(1,))


def test_forget_spec_key_is_stable_and_equal_for_equal_specs():
    assert CLASS_1.key() == engine.ForgetSpec(classes=[1]).key() == "55797eb2d470"   # the file names on disk
    assert CLASS_1.key() != engine.ForgetSpec(classes=(2,)).key()
    assert len({CLASS_1, engine.ForgetSpec(classes=(1,))}) == 1                       # hashable value


def test_record_round_trips_through_json(tmp_path):
    record = engine.RunRecord(method="ft", label="FT", dataset="d", forget=CLASS_1, config={"lr": 0.1},
                              metrics={"UA": 1.0}, owner="me", extra={"future_field": 3}).start()
    engine.write_record(tmp_path, record)
    back = engine.read_record(tmp_path)
    assert back == record and back.forget == CLASS_1 and back.extra == {"future_field": 3}
    assert engine.read_record(tmp_path).to_json()["version"] == 2


def test_version_1_records_are_read_without_their_duplicates():
    old = {"status": "finished", "method": "wsscl", "spec": CLASS_1.to_dict(), "forget": CLASS_1.to_dict(),
           "id": "x", "pid": 7, "process": "p", "avg_gap": 1.5, "metrics": {"UA": 99.0, "avg_gap": 1.5},
           "insights": "ready"}
    record = engine.RunRecord.from_json(old)
    stored = record.to_json()
    assert record.forget == CLASS_1 and stored["metrics"] == {"UA": 99.0} and stored["avg_gap"] == 1.5
    assert not {"spec", "id", "pid", "process"} & set(stored)                      # a finished run: no process


def test_status_transitions_and_the_one_liveness_rule():
    record = engine.RunRecord(method="ft").start()
    assert record.live() and record.settle().status == "running"
    record.insights_started().finish(metrics={"UA": 1.0})
    assert record.status == "finished" and record.pid == os.getpid()             # insights still to come
    record.insights_ended("ready")
    assert record.pid is None and record.process is None
    dead = dataclasses.replace(engine.RunRecord(method="ft").start(), process="another-process")
    assert dead.settle().status == "interrupted"
    assert engine.RunRecord(method="ft").start().fail("boom").error == "boom"


def test_setting_and_fast_values_must_name_config_fields():
    @dataclasses.dataclass(frozen=True)
    class Renamed(METHODS["ft"].config_class):
        FAST = {"epoch_count": 1}

    with pytest.raises(TypeError, match="epoch_count"):
        _check_defaults(MethodInfo("x", "X", "", Renamed, METHODS["ft"].unlearn))
