"""Pooling Wh into D-RECs: worked examples and invariants over generated histories."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import BadInput, Conflict
from chalicelib.domain.issuance.drafts import DrecDraft, contribution_leaf, contributions_root, merkle_root
from chalicelib.domain.issuance.hours import split_by_hour
from chalicelib.domain.issuance.keys import PoolingConfig, PoolKey, pool_key
from chalicelib.domain.issuance.pools import PoolState, add_to_pool
from chalicelib.domain.issuance.serials import parse_serial
from chalicelib.domain.issuance.slices import Slice
from chalicelib.domain.ledger.canonical import canonical_json

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
OWNER = "acc-1"


def reading(
    number: int,
    energy_wh: int,
    *,
    device_id: str | None = None,
    start: datetime = T0,
    minutes: int = 60,
    device_type: str = "solar_home_system",
    country: str = "KE",
    offtaker_type: str = "household",
    grid_connected: bool = False,
) -> Slice:
    return Slice(
        device_id=device_id or f"dev-{number}",
        reading_id=f"r-{number}",
        energy_wh=energy_wh,
        period_start=start,
        period_end=start + timedelta(minutes=minutes),
        country=country,
        device_type=device_type,
        offtaker_type=offtaker_type,
        source_id="src-1",
        signature=f"sig-{number}",
        grid_connected=grid_connected,
    )


def pool_for(
    item: Slice, config: PoolingConfig | None = None
) -> tuple[PoolKey, PoolState]:
    key = pool_key(OWNER, item, config or PoolingConfig())
    return key, PoolState.empty(key.pool_id)


def test_three_devices_of_400_wh_make_one_drec_and_leave_200_wh():
    # GIVEN 400 Wh from each of three devices of one owner
    slices = [reading(i, 400) for i in range(3)]
    key, state = pool_for(slices[0])
    # WHEN they are pooled
    state, drecs = add_to_pool(state, key, slices, OWNER)
    # THEN one D-REC holds 400 + 400 + 200 Wh and 200 Wh of the third wait
    assert len(drecs) == 1
    drec = drecs[0]
    assert [(c.device_id, c.energy_wh) for c in drec.contributions] == [
        ("dev-0", 400),
        ("dev-1", 400),
        ("dev-2", 200),
    ]
    assert drec.serial == f"DREC-KE-SHS-202611-{key.pool_code}-00000001"
    assert drec.hourly_wh == {"2026-11-01T10:00:00Z": 1000}
    assert drec.avoided_co2_kg == pytest.approx(0.8)
    assert drec.signatures == ("sig-0", "sig-1", "sig-2")
    assert [(s.reading_id, s.energy_wh) for s in state.remainder] == [("r-2", 200)]
    assert (state.accepted_wh, state.issued_count, state.next_sequence) == (1200, 1, 2)
    assert state.version == 1


def test_a_large_reading_is_split_across_consecutive_drecs():
    # GIVEN 100 Wh waiting, then a 2500 Wh reading
    first = reading(1, 100)
    key, state = pool_for(first)
    state, _ = add_to_pool(state, key, [first], OWNER)
    # WHEN the big reading arrives
    state, drecs = add_to_pool(state, key, [reading(2, 2500)], OWNER)
    # THEN it closes the first D-REC, fills the second, and 600 Wh of it wait
    assert [d.sequence for d in drecs] == [1, 2]
    assert [(c.reading_id, c.energy_wh) for c in drecs[0].contributions] == [
        ("r-1", 100),
        ("r-2", 900),
    ]
    assert [(c.reading_id, c.energy_wh) for c in drecs[1].contributions] == [
        ("r-2", 1000)
    ]
    assert [(s.reading_id, s.energy_wh) for s in state.remainder] == [("r-2", 600)]
    assert state.version == 2


def test_a_reading_already_in_the_remainder_is_refused():
    # GIVEN a reading waiting in the remainder
    item = reading(1, 300)
    key, state = pool_for(item)
    state, _ = add_to_pool(state, key, [item], OWNER)
    # WHEN it is delivered again, THEN Conflict names the reading
    with pytest.raises(Conflict) as raised:
        add_to_pool(state, key, [item], OWNER)
    assert raised.value.field == "reading_id"


def test_the_same_reading_twice_in_one_call_is_refused():
    item = reading(1, 300)
    key, state = pool_for(item)
    with pytest.raises(Conflict):
        add_to_pool(state, key, [item, item], OWNER)


def test_a_reading_of_another_pool_is_refused():
    # GIVEN a Kenyan pool, WHEN a Nigerian reading is added, THEN BadInput
    key, state = pool_for(reading(1, 300))
    with pytest.raises(BadInput):
        add_to_pool(state, key, [reading(2, 300, country="NG")], OWNER)


def test_pools_that_do_not_partition_by_device_type_record_the_mix():
    # GIVEN a buyer's pool of "any device type in Kenya"
    config = PoolingConfig(partition_by=("country",))
    shs = reading(1, 600, device_type="solar_home_system")
    mini_grid = reading(2, 600, device_type="mini_grid", offtaker_type="business")
    key, state = pool_for(shs, config)
    # WHEN devices of two types fill it
    assert pool_key(OWNER, mini_grid, config) == key
    state, drecs = add_to_pool(state, key, [shs, mini_grid], OWNER)
    # THEN the D-REC records the mix and its serial says MIX
    drec = drecs[0]
    assert drec.device_type == "mixed"
    assert drec.device_types == ("mini_grid", "solar_home_system")
    assert drec.offtaker_types == ("business", "household")
    assert drec.country == "KE"
    assert parse_serial(drec.serial).device_type_code == "MIX"
    assert key.pool_id == "acc-1|KE|*|*|202611"


def test_hourly_wh_follows_each_reading_over_the_hours_it_spans():
    # GIVEN a 3-hour reading of 1000 Wh starting at 10:30
    item = reading(1, 1000, start=T0 + timedelta(minutes=30), minutes=180)
    key, state = pool_for(item)
    _, drecs = add_to_pool(state, key, [item], OWNER)
    # THEN the hours get 1/6, 2/6, 2/6, 1/6 of it, in whole Wh summing to 1000
    assert drecs[0].hourly_wh == {
        "2026-11-01T10:00:00Z": 167,
        "2026-11-01T11:00:00Z": 333,
        "2026-11-01T12:00:00Z": 333,
        "2026-11-01T13:00:00Z": 167,
    }
    assert drecs[0].period_start == T0 + timedelta(minutes=30)
    assert drecs[0].period_end == T0 + timedelta(minutes=210)


@given(
    energy_wh=st.integers(0, 50_000),
    start_minute=st.integers(0, 59),
    minutes=st.integers(1, 60 * 30),
)
@settings(max_examples=100, deadline=None)
def test_split_by_hour_is_exact(energy_wh, start_minute, minutes):
    start = T0 + timedelta(minutes=start_minute)
    parts = split_by_hour(energy_wh, start, start + timedelta(minutes=minutes))
    assert sum(parts.values()) == energy_wh
    assert all(hour.minute == 0 and wh > 0 for hour, wh in parts.items())


def test_grid_connected_contributions_use_the_country_grid_factor():
    # GIVEN rooftop PV on the Kenyan grid (0.462 kg/kWh) and in South Africa (0.964)
    config = PoolingConfig(partition_by=())
    kenya = reading(1, 500, device_type="rooftop_pv", grid_connected=True)
    south_africa = reading(
        2, 500, device_type="rooftop_pv", country="ZA", grid_connected=True
    )
    key, state = pool_for(kenya, config)
    _, drecs = add_to_pool(state, key, [kenya, south_africa], OWNER)
    # THEN each half kWh counts at its own country's factor
    assert drecs[0].avoided_co2_kg == pytest.approx(0.5 * 0.462 + 0.5 * 0.964)
    assert drecs[0].country == "mixed"
    assert drecs[0].serial.startswith("DREC-XX-MIX-202611-")


def test_period_partitions_follow_the_configured_granularity():
    item = reading(1, 10, start=datetime(2026, 11, 5, 10, 15, tzinfo=UTC))
    assert pool_key(OWNER, item, PoolingConfig(period="month")).period_label == "202611"
    assert pool_key(OWNER, item, PoolingConfig(period="day")).period_label == "20261105"
    assert (
        pool_key(OWNER, item, PoolingConfig(period="hour")).period_label == "2026110510"
    )


def test_pooling_config_parses_from_the_environment():
    assert (
        PoolingConfig.from_env_value("country,device_type,offtaker_type;month")
        == PoolingConfig()
    )
    config = PoolingConfig.from_env_value("country ;day;shards=4")
    assert config == PoolingConfig(partition_by=("country",), period="day", shards=4)
    assert PoolingConfig.from_env_value(config.to_env_value()) == config
    with pytest.raises(BadInput):
        PoolingConfig.from_env_value("colour;month")
    with pytest.raises(BadInput):
        PoolingConfig.from_env_value("country;week")


def test_sharded_pools_keep_a_device_in_one_shard_with_its_own_serial_block():
    # GIVEN pools sharded four ways
    config = PoolingConfig(shards=4)
    keys = {
        pool_key(OWNER, reading(i, 10, device_id="dev-7"), config) for i in range(20)
    }
    # THEN one device always maps to one shard
    assert len(keys) == 1
    # AND different shards have different pool codes
    shards = {pool_key(OWNER, reading(i, 10), config) for i in range(200)}
    assert {key.shard for key in shards} == {0, 1, 2, 3}
    assert len({key.pool_code for key in shards}) == 4
    for key in shards:
        assert PoolKey.from_pool_id(key.pool_id) == key


def test_pool_ids_parse_back_to_their_keys():
    key = pool_key(OWNER, reading(1, 10), PoolingConfig(partition_by=("country",)))
    assert PoolKey.from_pool_id(key.pool_id) == key
    with pytest.raises(BadInput):
        PoolKey.from_pool_id("acc-1|KE")


def test_state_and_drecs_survive_storage_round_trips():
    slices = [reading(i, 700) for i in range(3)]
    key, state = pool_for(slices[0])
    state, drecs = add_to_pool(state, key, slices, OWNER)
    stored_state = json.loads(json.dumps(state.to_dict()))
    stored_drec = json.loads(json.dumps(drecs[0].to_dict()))
    assert PoolState.from_dict(stored_state) == state
    assert DrecDraft.from_dict(stored_drec) == drecs[0]
    assert isinstance(stored_drec["contributions"][0]["energy_wh"], int)


def test_contributions_root_is_a_merkle_root_over_published_rows():
    slices = [reading(i, 250) for i in range(3)]
    leaves = [
        hashlib.sha256(b"\x00" + canonical_json(item.contribution_row())).digest()
        for item in slices
    ]
    assert [contribution_leaf(item) for item in slices] == leaves
    top = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    expected = hashlib.sha256(b"\x01" + top + leaves[2]).digest()
    assert merkle_root(leaves) == expected
    assert contributions_root(slices) == expected.hex()
    assert contributions_root(slices[:1]) == leaves[0].hex()


# --- generated histories -------------------------------------------------------

DEVICES = [
    ("dev-a", "KE", "solar_home_system", "household", False),
    ("dev-b", "KE", "solar_home_system", "household", False),
    ("dev-c", "KE", "mini_grid", "business", False),
    ("dev-d", "NG", "solar_home_system", "household", False),
    ("dev-e", "NG", "rooftop_pv", "business", True),
]
CONFIGS = [
    PoolingConfig(),
    PoolingConfig(partition_by=("country",)),
    PoolingConfig(partition_by=(), period="day"),
    PoolingConfig(shards=3),
]


@st.composite
def histories(draw):
    """Readings, then deliveries: readings in any order, some delivered twice, in batches."""
    count = draw(st.integers(1, 40))
    readings = []
    for number in range(count):
        device_id, country, device_type, offtaker_type, grid = draw(
            st.sampled_from(DEVICES)
        )
        start = datetime(2026, 10, 31, tzinfo=UTC) + timedelta(
            minutes=15 * draw(st.integers(0, 4 * 24 * 3))
        )
        readings.append(
            Slice(
                device_id=device_id,
                reading_id=f"r-{number}",
                energy_wh=draw(st.integers(0, 2600)),
                period_start=start,
                period_end=start
                + timedelta(minutes=draw(st.sampled_from([15, 60, 180]))),
                country=country,
                device_type=device_type,
                offtaker_type=offtaker_type,
                source_id=draw(st.sampled_from(["src-1", "src-2"])),
                grid_connected=grid,
            )
        )
    redelivered = draw(st.lists(st.sampled_from(readings), max_size=count))
    deliveries = draw(st.permutations(readings + redelivered))
    cuts = sorted(draw(st.lists(st.integers(0, len(deliveries)), max_size=8)))
    batches = [
        deliveries[a:b]
        for a, b in zip([0, *cuts], [*cuts, len(deliveries)], strict=True)
    ]
    return readings, batches


def run(config, batches):
    """The service's part: dedup by seen reading ids, one add_to_pool per pool per batch."""
    states: dict[str, PoolState] = {}
    keys: dict[str, PoolKey] = {}
    calls: dict[str, int] = defaultdict(int)
    arrivals: dict[str, list[str]] = defaultdict(list)
    drecs: list[DrecDraft] = []
    seen: set[str] = set()
    for batch in batches:
        by_pool: dict[str, list[Slice]] = defaultdict(list)
        for item in batch:
            if item.reading_id in seen:
                continue
            seen.add(item.reading_id)
            key = pool_key(OWNER, item, config)
            keys[key.pool_id] = key
            by_pool[key.pool_id].append(item)
            if item.energy_wh:
                arrivals[key.pool_id].append(item.reading_id)
        for pool_id, items in by_pool.items():
            state = states.get(pool_id, PoolState.empty(pool_id))
            states[pool_id], issued = add_to_pool(state, keys[pool_id], items, OWNER)
            calls[pool_id] += 1
            drecs.extend(issued)
    return states, keys, calls, arrivals, drecs


@given(config=st.sampled_from(CONFIGS), history=histories())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_invariants_hold_for_any_history(config, history):
    readings, batches = history
    states, keys, calls, arrivals, drecs = run(config, batches)

    # Wh accepted = 1000 x D-RECs issued + remainder, per pool
    routed: dict[str, int] = defaultdict(int)
    for item in readings:
        routed[pool_key(OWNER, item, config).pool_id] += item.energy_wh
    for pool_id, state in states.items():
        assert state.accepted_wh == routed[pool_id]
        assert state.accepted_wh == 1000 * state.issued_count + state.remainder_wh
        assert state.remainder_wh < 1000
        assert state.version == calls[pool_id]
        assert state.next_sequence == state.issued_count + 1

    # every D-REC holds exactly 1000 Wh, also hour by hour, from its own pool
    for drec in drecs:
        assert sum(c.energy_wh for c in drec.contributions) == 1000 == drec.energy_wh
        assert sum(drec.hourly_wh.values()) == 1000
        assert all(c.energy_wh > 0 for c in drec.contributions)
        assert len({c.reading_id for c in drec.contributions}) == len(
            drec.contributions
        )
        assert all(keys[drec.pool_id].admits(c) for c in drec.contributions)
        assert drec.period_start == min(c.period_start for c in drec.contributions)

    # each reading's Wh is split exactly once over D-RECs and the remainder
    placed: dict[str, int] = defaultdict(int)
    for drec in drecs:
        for c in drec.contributions:
            placed[c.reading_id] += c.energy_wh
    for state in states.values():
        for c in state.remainder:
            placed[c.reading_id] += c.energy_wh
    assert placed == {
        item.reading_id: item.energy_wh for item in readings if item.energy_wh
    }

    # serials are unique and gap-free per pool, one prefix per pool
    assert len({d.serial for d in drecs}) == len(drecs)
    by_pool: dict[str, list[DrecDraft]] = defaultdict(list)
    for drec in drecs:
        by_pool[drec.pool_id].append(drec)
    for pool_id, issued in by_pool.items():
        assert [d.sequence for d in issued] == list(
            range(1, states[pool_id].issued_count + 1)
        )
        assert [parse_serial(d.serial).sequence for d in issued] == [
            d.sequence for d in issued
        ]
        assert len({parse_serial(d.serial).prefix for d in issued}) == 1

    # first in, first out: D-RECs then the remainder replay each pool's arrivals
    for pool_id, state in states.items():
        order = [c.reading_id for d in by_pool[pool_id] for c in d.contributions]
        order += [c.reading_id for c in state.remainder]
        collapsed = [
            rid for i, rid in enumerate(order) if i == 0 or order[i - 1] != rid
        ]
        assert collapsed == arrivals[pool_id]


@given(config=st.sampled_from(CONFIGS), history=histories())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_batching_does_not_change_what_is_issued(config, history):
    # GIVEN one history delivered in batches, and the same deliveries one by one
    _readings, batches = history
    one_by_one = [[item] for batch in batches for item in batch]
    batched = run(config, batches)
    single = run(config, one_by_one)
    # THEN the same D-RECs come out with the same contributions, and the same remainders
    assert {d.serial: d.contributions for d in batched[4]} == {
        d.serial: d.contributions for d in single[4]
    }
    assert {p: s.remainder for p, s in batched[0].items()} == {
        p: s.remainder for p, s in single[0].items()
    }
