import time
from tests.unit.test_trading import _market, _post, _holdings, _redemption
def test_bench(api, aws):
    for n in (100, 400):
        m = _market(api, aws, n * 1000)
        t = time.perf_counter()
        s, b = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": n})
        t1 = time.perf_counter() - t
        assert s == 201, b
        t = time.perf_counter()
        s, r = _post(api, "/redemptions", _redemption(m, None, quantity=n, sponsors=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}]) | {"serials": None})
        t2 = time.perf_counter() - t
        assert s == 201, r
        print(f"\n{n} D-RECs: transfer {t1:.2f} s ({n/t1:.0f}/s), redemption {t2:.2f} s ({n/t2:.0f}/s)", r["serial_ranges"])
