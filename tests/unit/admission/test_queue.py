from __future__ import annotations

import random

import pytest

from gpufleet.admission.queue import AdmissionQueue, Ticket
from gpufleet.errors import RateLimited


def ticket(tenant: str = "t", priority: int = 0, tokens: int = 100, deadline: float = 1e9,
           at: float = 0.0) -> Ticket:  # fmt: skip
    return Ticket("m", tenant, priority, tokens, enqueued_s=at, deadline_s=deadline)


def add(queue: AdmissionQueue, queued: Ticket) -> Ticket:
    assert queue.enqueue(queued) is None, "nothing displaced"
    return queued


def test_higher_priority_band_always_first() -> None:
    queue = AdmissionQueue()
    low = [add(queue, ticket(priority=0)) for _ in range(3)]
    high = [add(queue, ticket(priority=10)) for _ in range(2)]
    assert [queue.pop() for _ in range(5)] == [*high, *low]
    assert queue.pop() is None


def test_fcfs_within_a_tenant_and_edf_when_asked() -> None:
    fcfs = AdmissionQueue(ordering="fcfs")
    first, second = add(fcfs, ticket(deadline=9)), add(fcfs, ticket(deadline=1))
    assert [fcfs.pop(), fcfs.pop()] == [first, second]
    edf = AdmissionQueue(ordering="edf")
    late, early = add(edf, ticket(deadline=9)), add(edf, ticket(deadline=1))
    assert [edf.pop(), edf.pop()] == [early, late]


@pytest.mark.parametrize("weights", [{"a": 1.0, "b": 1.0}, {"a": 3.0, "b": 1.0},
                                     {"a": 1.0, "b": 2.0, "c": 5.0}])  # fmt: skip
def test_token_weighted_fairness_over_a_long_backlog(weights: dict[str, float]) -> None:
    """Tenants with very different request sizes get tokens in proportion to their weights."""
    rng = random.Random(7)
    queue = AdmissionQueue(max_queue_len=100_000, tenant_weights=weights)
    sizes = {"a": (50, 150), "b": (1000, 3000), "c": (300, 400)}
    for tenant in weights:
        for _ in range(3000):
            queue.enqueue(ticket(tenant, tokens=rng.randint(*sizes[tenant])))
    served = dict.fromkeys(weights, 0)
    budget = 250_000  # well inside every tenant's backlog: all stay backlogged
    while budget > 0:
        popped = queue.pop()
        assert popped is not None
        served[popped.tenant] += popped.tokens
        budget -= popped.tokens
    total_served, total_weight = sum(served.values()), sum(weights.values())
    for tenant, weight in weights.items():
        share = served[tenant] / total_served
        assert share == pytest.approx(weight / total_weight, rel=0.10), (tenant, served)


def test_new_tenant_does_not_get_credit_for_idle_time() -> None:
    queue = AdmissionQueue()
    for _ in range(100):
        add(queue, ticket("old", tokens=100))
    for _ in range(50):
        queue.pop()
    for _ in range(10):
        add(queue, ticket("new", tokens=100))
    order = [queue.pop().tenant for _ in range(10)]  # type: ignore[union-attr]
    assert order.count("new") <= 6, "alternates rather than draining the newcomer first"


def test_deadline_shedding_and_removal() -> None:
    queue = AdmissionQueue()
    soon = add(queue, ticket(deadline=1.0))
    later = add(queue, ticket(deadline=5.0))
    gone = add(queue, ticket(deadline=5.0))
    assert queue.expire(0.5) == []
    assert queue.expire(1.0) == [soon]
    assert queue.remove(gone) and not queue.remove(gone)
    assert len(queue) == 1 and queue.pop() is later


def test_full_queue_rejects_with_429() -> None:
    queue = AdmissionQueue(max_queue_len=2)
    add(queue, ticket())
    add(queue, ticket())
    with pytest.raises(RateLimited) as info:
        add(queue, ticket())
    assert info.value.status == 429 and info.value.retry_after_s >= 1
    assert queue.depth_by_priority() == {0: 2}


def test_a_higher_band_displaces_the_lowest_band_ticket_due_last_from_a_full_queue() -> None:
    queue = AdmissionQueue(max_queue_len=3)
    first_low, last_low = add(queue, ticket("a", priority=0)), add(queue, ticket("b", priority=0))
    middle = add(queue, ticket(priority=5))
    urgent = ticket(priority=10)
    assert queue.enqueue(urgent) is last_low and last_low.done
    assert queue.enqueue(ticket(priority=10)) is first_low
    assert queue.enqueue(ticket(priority=10)) is middle
    assert queue.depth_by_priority() == {0: 0, 5: 0, 10: 3}
    with pytest.raises(RateLimited):  # a full queue of its own band: refused, nothing displaced
        queue.enqueue(ticket(priority=10))
    assert queue.pop() is urgent


def test_a_low_band_arrival_never_displaces_anything() -> None:
    queue = AdmissionQueue(max_queue_len=1)
    queued = add(queue, ticket(priority=0))
    with pytest.raises(RateLimited):
        queue.enqueue(ticket(priority=0))
    assert queue.pop() is queued


def test_under_edf_the_displaced_ticket_is_the_one_with_the_latest_deadline() -> None:
    queue = AdmissionQueue(max_queue_len=2, ordering="edf")
    late, soon = add(queue, ticket(deadline=9)), add(queue, ticket(deadline=1))
    assert queue.enqueue(ticket(priority=10)) is late
    assert queue.pop().priority == 10 and queue.pop() is soon  # type: ignore[union-attr]


def test_expiry_sheds_in_deadline_order_and_skips_what_left_the_queue() -> None:
    queue = AdmissionQueue(max_queue_len=10_000)
    rng = random.Random(3)
    tickets = [add(queue, ticket(deadline=rng.uniform(0, 100))) for _ in range(2000)]
    for popped in range(500):
        assert queue.pop() is tickets[popped]  # FCFS: these leave before their deadlines
    expired = queue.expire(50.0)
    waiting = tickets[500:]
    assert expired == sorted(
        (t for t in waiting if t.deadline_s <= 50.0), key=lambda t: t.deadline_s
    )
    assert len(queue) == len(waiting) - len(expired)
    assert queue.expire(50.0) == []
    assert {t.deadline_s <= 50.0 for t in tickets if not t.done} <= {False}


def test_the_deadline_index_stays_bounded_as_tickets_come_and_go() -> None:
    queue = AdmissionQueue()
    for _ in range(100_000):
        add(queue, ticket(deadline=1e9))
        queue.pop()
    assert len(queue._deadlines) <= 2 * len(queue) + 65
