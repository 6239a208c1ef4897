import re
from collections import Counter
from pathlib import Path

from datatrust.adapters import FORMATS
from datatrust.demo import coventry_lsoas, write_demo_sources
from datatrust.errors import RecordError


def _contents(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    first = write_demo_sources(tmp_path / "a")
    write_demo_sources(tmp_path / "b")

    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert list(first) == ["council", "health", "social-care"]
    assert [name for name, _ in first["council"]] == [
        "sensor-inventory",
        "things-stack-uplinks",
        "access-point-inventory",
        "freeradius-detail",
        "meraki-scanning",
        "hclic-xml",
    ]


def test_another_seed_writes_different_files(tmp_path: Path) -> None:
    write_demo_sources(tmp_path / "a", seed=1)
    write_demo_sources(tmp_path / "b", seed=2)

    assert _contents(tmp_path / "a") != _contents(tmp_path / "b")


def test_every_generated_file_parses_through_its_adapter_with_no_errors(tmp_path: Path) -> None:
    sources = write_demo_sources(tmp_path)
    counts: Counter[str] = Counter()
    lsoas = {lsoa.code for lsoa in coventry_lsoas()}

    for files in sources.values():
        for format_name, path in files:
            for record in FORMATS[format_name](path.read_bytes(), path.name):
                assert not isinstance(record, RecordError), record
                counts[type(record).__name__] += 1
                area = getattr(record, "lsoa_code", None)
                assert area is None or area in lsoas

    assert counts["SensorDevice"] == 30
    assert counts["SensorUplink"] == 30 * 7 * 24 * 4
    assert counts["AccessPointDevice"] == 20
    assert 2_500 <= counts["WifiAccounting"] <= 3_500
    assert counts["Patient"] == 1_000
    assert 1_000 <= counts["Encounter"] <= 4_000
    assert counts["CareEvent"] == 600
    assert counts["PresenceObservation"] == 2_000
    assert 500 <= counts["Observation"] <= 2_000
    assert 150 <= counts["Condition"] <= 450
    assert counts["HousingCase"] == 150
    uplinks = dict(sources["council"])["things-stack-uplinks"].read_text("utf-8").splitlines()
    air = [line for line in uplinks if '"model_id": "am308"' in line]
    assert 0 < sum('"decoded_payload"' in line for line in air) < len(air)
    hclic = dict(sources["council"])["hclic-xml"].read_text("utf-8")
    bundles = "".join(path.read_text("utf-8") for _, path in sources["health"])
    shared = {n for n in re.findall(r"<Local_NHS_Number>(\d{10})<", hclic) if n in bundles}
    assert len(shared) == 60


def test_coventry_lsoas_are_real_2021_codes_with_coventry_names() -> None:
    lsoas = coventry_lsoas()

    assert len(lsoas) == 203
    assert lsoas[0].code == "E01009522"
    assert lsoas[0].name == "Coventry 014A"
    assert all(lsoa.code.startswith("E01") and lsoa.name.startswith("Coventry ") for lsoa in lsoas)


def test_up_writes_the_demo_sources_once_and_again_only_when_one_is_missing(tmp_path: Path) -> None:
    from datatrust._prepare import write_demo_files

    first = write_demo_files(tmp_path)
    path = first["health"][0][1]
    written_at = path.stat().st_mtime_ns
    assert write_demo_files(tmp_path) == first
    assert path.stat().st_mtime_ns == written_at  # reused, not rewritten
    path.unlink()
    assert write_demo_files(tmp_path) == first
    assert path.is_file()
