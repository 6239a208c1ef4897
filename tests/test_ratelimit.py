import pytest

from datatrust._ratelimit import RateLimiter
from datatrust.errors import RateLimited, error_headers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_served_then_refused_with_when_to_come_back():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("client a")
    with pytest.raises(
        RateLimited, match=r"too many requests for client a: at most 60 a minute"
    ) as refused:
        limiter.take("client a")
    assert error_headers(refused.value) == {"Retry-After": "1"}


def test_the_bucket_refills_with_time():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    limiter.take("client a")
    clock.now += 1.0
    limiter.take("client a")


def test_clients_have_separate_shares_and_a_person_draws_on_both():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    limiter.take("client portal", "person alice")
    limiter.take("client other")
    with pytest.raises(RateLimited, match="client portal"):
        limiter.take("client portal", "person bob")
    with pytest.raises(RateLimited, match="person alice"):
        limiter.take("client third", "person alice")


def test_a_refusal_takes_nothing_from_the_other_buckets():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    limiter.take("person alice")
    with pytest.raises(RateLimited):
        limiter.take("client portal", "person alice")
    limiter.take("client portal")
