"""The Ledger port's behaviour, run against every backend (memory, SQLite, MariaDB)."""

from __future__ import annotations

import itertools
from datetime import UTC, timedelta, timezone

import pytest

from billingcenter.errors import (
    DuplicateConflict,
    InvalidArgument,
    UnknownOrder,
    UnknownProduct,
)
from billingcenter.ledger.schema import INTAKE_TABLES
from billingcenter.model import ErrorRecord, OrderStatus, Product, Receipt, StateKind

from .builders import ACTIVATED, CATALOGUE, LATER, NOW, account_change, event, order, usage

FAR_FUTURE = NOW + timedelta(days=2)


@pytest.fixture
def ledger(ledger):
    """A ledger on each backend with the catalogue synced and order o-1 installed."""
    ledger.sync_products(CATALOGUE)
    ledger.add_order(order(), NOW)
    return ledger


def accepted(key, at=NOW):
    return Receipt(key=key, status="ACCEPTED", recorded_at=at)


class TestRowCounts:
    def test_names_every_table(self, ledger):
        """Every intake table is counted, under its SQL name."""
        assert set(ledger.row_counts()) == {table.name for table in INTAKE_TABLES}

    def test_counts_the_setup(self, ledger):
        """The fixture's catalogue and order are counted."""
        counts = ledger.row_counts()
        assert (counts["product"], counts["product_plan"], counts["order_mirror"]) == (2, 2, 1)


class TestSyncProducts:
    def test_repeat_changes_nothing(self, ledger):
        """Syncing the same catalogue again adds no rows."""
        before = ledger.row_counts()
        ledger.sync_products(CATALOGUE)
        assert ledger.row_counts() == before

    def test_adds_plans_and_never_deletes(self, ledger):
        """A plan dropped from the catalogue stays orderable; a new plan is added."""
        ledger.sync_products([Product("SMS-NOTIFY", "SMS v2", frozenset({"SMS-BULK"}))])
        assert ledger.row_counts()["product_plan"] == 3
        for plan in ("SMS-MONTHLY", "SMS-BULK"):
            assert ledger.add_order(order(order_id=f"o-{plan}", plan_code=plan), NOW)

    def test_adds_new_products(self, ledger):
        """A product new to the catalogue becomes orderable."""
        ledger.sync_products([Product("VPN", "VPN", frozenset({"VPN-DAY"}))])
        receipt = ledger.add_order(order(order_id="o-vpn", product_code="VPN", plan_code=""), NOW)
        assert receipt == accepted("o-vpn")

    def test_refuses_an_empty_code(self, ledger):
        """A product without a code is refused."""
        with pytest.raises(InvalidArgument):
            ledger.sync_products([Product("", "nameless")])


class TestAddOrder:
    def test_first_insert(self, ledger):
        """A new order answers a receipt of now and is stored as sent, ACTIVE."""
        new = order(order_id="o-2", payer_id="p-2")
        assert ledger.add_order(new, NOW) == accepted("o-2")
        assert ledger.get_order("o-2") == new
        assert ledger.order_status("o-2") is OrderStatus.ACTIVE

    def test_same_content_repeat(self, ledger):
        """A repeat answers the first receipt and changes nothing."""
        before = ledger.row_counts()
        assert ledger.add_order(order(), LATER) == accepted("o-1", NOW)
        assert ledger.row_counts() == before

    def test_different_content_repeat(self, ledger):
        """A repeat with other content is a conflict and changes nothing."""
        before = ledger.row_counts()
        with pytest.raises(DuplicateConflict):
            ledger.add_order(order(account_num=4), LATER)
        assert ledger.row_counts() == before
        assert ledger.get_order("o-1") == order()

    def test_keys_are_exact(self, ledger):
        """Keys differing in case or a trailing space are different orders."""
        for key in ("O-1", "o-1 "):
            assert ledger.add_order(order(order_id=key, account_num=9), NOW) == accepted(key)
        assert ledger.get_order("o-1") == order()
        assert ledger.row_counts()["order_mirror"] == 3

    def test_unknown_product(self, ledger):
        """An order of a product outside the catalogue is refused."""
        with pytest.raises(UnknownProduct):
            ledger.add_order(order(order_id="o-2", product_code="NOPE"), NOW)
        assert ledger.get_order("o-2") is None

    def test_unknown_plan(self, ledger):
        """An order on a plan the product does not have is refused."""
        with pytest.raises(UnknownProduct):
            ledger.add_order(order(order_id="o-2", plan_code="GOLD"), NOW)
        assert ledger.get_order("o-2") is None

    def test_any_plan_of_a_planless_product(self, ledger):
        """A product with no plans listed accepts any plan."""
        new = order(order_id="o-2", product_code="CLOUD-DISK", plan_code="ANY")
        assert ledger.add_order(new, NOW) == accepted("o-2")

    @pytest.mark.parametrize("field", ["order_id", "payer_id", "product_code"])
    def test_missing_field(self, ledger, field):
        """A required field left blank is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_order(order(**{"order_id": "o-2", field: " "}), NOW)
        assert ledger.row_counts()["order_mirror"] == 1

    def test_far_future(self, ledger):
        """An activation more than a day ahead is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_order(order(order_id="o-2", activated_at=FAR_FUTURE), NOW)
        assert ledger.get_order("o-2") is None

    def test_times_round_trip_as_aware_utc(self, ledger):
        """A time sent with an offset comes back the same instant, in UTC, to the microsecond."""
        beijing = timezone(timedelta(hours=8))
        sent = ACTIVATED.astimezone(beijing)
        ledger.add_order(order(order_id="o-2", activated_at=sent), NOW)
        stored = ledger.get_order("o-2")
        assert stored.activated_at == sent
        assert stored.activated_at.tzinfo is UTC
        assert stored.activated_at.microsecond == 654321

    def test_unicode_text(self, ledger):
        """Chinese and emoji (4-byte UTF-8) text is stored and read back intact."""
        new = order(order_id="订单-😀", payer_id="付费者-1", user_id="张三🧑‍💻")
        ledger.add_order(new, NOW)
        assert ledger.get_order("订单-😀") == new


class TestAddStateEvent:
    def test_first_insert(self, ledger):
        """A new event answers a receipt and sets the order's status."""
        assert ledger.add_state_event(event(), NOW) == accepted("e-1")
        assert ledger.order_status("o-1") is OrderStatus.PAUSED
        assert ledger.row_counts()["order_state_event"] == 1

    def test_same_content_repeat(self, ledger):
        """A repeat answers the first receipt and changes nothing."""
        ledger.add_state_event(event(), NOW)
        before = ledger.row_counts()
        assert ledger.add_state_event(event(), LATER) == accepted("e-1", NOW)
        assert ledger.row_counts() == before

    def test_different_content_repeat(self, ledger):
        """A repeat with other content is a conflict and leaves the status alone."""
        ledger.add_state_event(event(), NOW)
        before = ledger.row_counts()
        with pytest.raises(DuplicateConflict):
            ledger.add_state_event(event(kind=StateKind.CANCELLED), LATER)
        assert ledger.row_counts() == before
        assert ledger.order_status("o-1") is OrderStatus.PAUSED

    def test_unknown_order(self, ledger):
        """An event of an order billing never saw is refused."""
        with pytest.raises(UnknownOrder):
            ledger.add_state_event(event(order_id="o-404"), NOW)
        assert ledger.row_counts()["order_state_event"] == 0

    def test_before_activation(self, ledger):
        """An event dated before the order's activation is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_state_event(event(changed_at=ACTIVATED - timedelta(seconds=1)), NOW)
        assert ledger.order_status("o-1") is OrderStatus.ACTIVE

    def test_far_future(self, ledger):
        """An event dated more than a day ahead is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_state_event(event(changed_at=FAR_FUTURE), NOW)

    def test_missing_event_id(self, ledger):
        """An event without its key is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_state_event(event(event_id=""), NOW)

    def test_arrival_order_does_not_matter(self, ledger):
        """Every arrival order of three events leaves the status of the latest one."""
        base = ACTIVATED + timedelta(days=1)
        kinds = [StateKind.PAUSED, StateKind.RESUMED, StateKind.CANCELLED]
        for number, arrival in enumerate(itertools.permutations(range(3))):
            order_id = f"o-perm-{number}"
            ledger.add_order(order(order_id=order_id), NOW)
            for step in arrival:
                sent = event(
                    event_id=f"{order_id}-e{step}",
                    order_id=order_id,
                    kind=kinds[step],
                    changed_at=base + timedelta(hours=step),
                )
                ledger.add_state_event(sent, NOW)
            assert ledger.order_status(order_id) is OrderStatus.CANCELLED, arrival

    def test_a_late_old_event_changes_nothing(self, ledger):
        """An event older than the one that set the status is kept but does not win."""
        ledger.add_state_event(event(event_id="e-2", kind=StateKind.EXPIRED), NOW)
        older = event(event_id="e-1", kind=StateKind.RESUMED, changed_at=NOW - timedelta(days=2))
        assert ledger.add_state_event(older, NOW) == accepted("e-1")
        assert ledger.order_status("o-1") is OrderStatus.EXPIRED
        assert ledger.row_counts()["order_state_event"] == 2

    @pytest.mark.parametrize("arrival", [("e-a", "e-b"), ("e-b", "e-a")])
    def test_a_tie_goes_to_the_greater_event_id(self, ledger, arrival):
        """Two events at the same instant: the greater event id decides, whatever arrives first."""
        kinds = {"e-a": StateKind.CANCELLED, "e-b": StateKind.PAUSED}
        for event_id in arrival:
            ledger.add_state_event(event(event_id=event_id, kind=kinds[event_id]), NOW)
        assert ledger.order_status("o-1") is OrderStatus.PAUSED


class TestAddUsage:
    def test_first_insert_resolves_the_payer(self, ledger):
        """A usage record naming no payer is stored with its order's payer."""
        assert ledger.add_usage(usage(), NOW) == accepted("op-1")
        stored = ledger.get_usage("op-1")
        assert stored == usage(payer_id="p-1")

    def test_the_order_payer_named(self, ledger):
        """A usage record naming its order's payer is accepted."""
        assert ledger.add_usage(usage(payer_id="p-1"), NOW) == accepted("op-1")

    def test_another_payer_named(self, ledger):
        """A usage record naming someone else as payer is refused, not guessed at."""
        with pytest.raises(InvalidArgument):
            ledger.add_usage(usage(payer_id="p-2"), NOW)
        assert ledger.get_usage("op-1") is None

    def test_same_content_repeat(self, ledger):
        """A repeat answers the first receipt and changes nothing."""
        ledger.add_usage(usage(), NOW)
        before = ledger.row_counts()
        assert ledger.add_usage(usage(), LATER) == accepted("op-1", NOW)
        assert ledger.row_counts() == before

    def test_repeat_is_judged_as_sent(self, ledger):
        """The digest is of the record as sent: naming the payer the first call left out differs."""
        ledger.add_usage(usage(), NOW)
        with pytest.raises(DuplicateConflict):
            ledger.add_usage(usage(payer_id="p-1"), LATER)

    def test_different_content_repeat(self, ledger):
        """A repeat with other content is a conflict and changes nothing."""
        ledger.add_usage(usage(), NOW)
        before = ledger.row_counts()
        with pytest.raises(DuplicateConflict):
            ledger.add_usage(usage(quantity=3), LATER)
        assert ledger.row_counts() == before
        assert ledger.get_usage("op-1").quantity == 2

    def test_unknown_order(self, ledger):
        """Usage of an order billing never saw is refused."""
        with pytest.raises(UnknownOrder):
            ledger.add_usage(usage(order_id="o-404"), NOW)
        assert ledger.row_counts()["usage_record"] == 0

    def test_another_product(self, ledger):
        """Usage naming a product other than its order's is refused."""
        with pytest.raises(UnknownProduct):
            ledger.add_usage(usage(product_code="CLOUD-DISK"), NOW)

    def test_negative_quantity(self, ledger):
        """A negative quantity is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_usage(usage(quantity=-1), NOW)
        assert ledger.row_counts()["usage_record"] == 0

    @pytest.mark.parametrize("field", ["op_id", "order_id", "product_code", "user_id"])
    def test_missing_field(self, ledger, field):
        """A required field left blank is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_usage(usage(**{field: ""}), NOW)

    def test_far_future(self, ledger):
        """Usage dated more than a day ahead is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_usage(usage(occurred_at=FAR_FUTURE), NOW)

    def test_before_activation(self, ledger):
        """Usage dated before its order's activation is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_usage(usage(occurred_at=ACTIVATED - timedelta(microseconds=1)), NOW)

    def test_large_quantity(self, ledger):
        """A quantity beyond 32 bits is stored exactly (BIGINT)."""
        ledger.add_usage(usage(quantity=10**12), NOW)
        assert ledger.get_usage("op-1").quantity == 10**12

    def test_round_trip(self, ledger):
        """Times, attributes and Chinese/emoji text come back exactly as stored."""
        sent = usage(
            op_id="操作-🚀",
            user_id="李四🎉",
            occurred_at=NOW - timedelta(microseconds=1),
            attributes={"备注": "测试😀", "channel": "api", "empty": ""},
        )
        ledger.add_usage(sent, NOW)
        stored = ledger.get_usage("操作-🚀")
        assert stored == usage(
            op_id="操作-🚀",
            user_id="李四🎉",
            payer_id="p-1",
            occurred_at=NOW - timedelta(microseconds=1),
            attributes={"备注": "测试😀", "channel": "api", "empty": ""},
        )
        assert stored.occurred_at.tzinfo is UTC


class TestAddUsages:
    def test_mixed_batch(self, ledger):
        """Each record answers what add_usage would; refusals do not stop the others."""
        batch = [
            (usage(op_id="a"), NOW),
            (usage(op_id="bad", quantity=-1), NOW),
            (usage(op_id="lost", order_id="o-404"), NOW),
            (usage(op_id="b"), LATER),
            (usage(op_id="a"), LATER),
            (usage(op_id="a", quantity=7), LATER),
            (usage(op_id="c"), LATER),
        ]
        answers = ledger.add_usages(batch)
        assert answers[0] == accepted("a", NOW)
        assert isinstance(answers[1], InvalidArgument)
        assert isinstance(answers[2], UnknownOrder)
        assert answers[3] == accepted("b", LATER)
        assert answers[4] == accepted("a", NOW)
        assert isinstance(answers[5], DuplicateConflict)
        assert answers[6] == accepted("c", LATER)
        assert ledger.row_counts()["usage_record"] == 3
        assert ledger.get_usage("a").quantity == 2

    def test_repeat_of_a_batch(self, ledger):
        """Sending the same batch again answers the same and adds nothing."""
        batch = [(usage(op_id=f"op-{n}", quantity=n), NOW) for n in range(20)]
        first = ledger.add_usages(batch)
        before = ledger.row_counts()
        again = ledger.add_usages([(u, LATER) for u, _ in batch])
        assert again == first
        assert ledger.row_counts() == before

    def test_conflict_with_a_stored_record(self, ledger):
        """A stored key sent with other content is a conflict for that record only."""
        ledger.add_usage(usage(op_id="a"), NOW)
        answers = ledger.add_usages(
            [(usage(op_id="a", quantity=9), LATER), (usage(op_id="b"), LATER)]
        )
        assert isinstance(answers[0], DuplicateConflict)
        assert answers[1] == accepted("b", LATER)

    def test_a_refused_first_leaves_the_key_free(self, ledger):
        """A key whose first record was refused is a first call when it comes again."""
        answers = ledger.add_usages(
            [(usage(op_id="a", order_id="o-404"), NOW), (usage(op_id="a"), LATER)]
        )
        assert isinstance(answers[0], UnknownOrder)
        assert answers[1] == accepted("a", LATER)

    def test_all_refused(self, ledger):
        """A batch of refusals stores nothing."""
        answers = ledger.add_usages([(usage(quantity=-1), NOW), (usage(op_id=""), NOW)])
        assert [type(a) for a in answers] == [InvalidArgument, InvalidArgument]
        assert ledger.row_counts()["usage_record"] == 0

    def test_empty_batch(self, ledger):
        """An empty batch answers an empty list."""
        assert ledger.add_usages([]) == []

    def test_many_orders(self, ledger):
        """Records of several orders each get their own order's payer."""
        for n in range(5):
            ledger.add_order(order(order_id=f"o-{n}", payer_id=f"p-{n}"), NOW)
        batch = [(usage(op_id=f"op-{n}", order_id=f"o-{n}"), NOW) for n in range(5)]
        assert all(isinstance(a, Receipt) for a in ledger.add_usages(batch))
        assert [ledger.get_usage(f"op-{n}").payer_id for n in range(5)] == [
            f"p-{n}" for n in range(5)
        ]


class TestAddAccountChange:
    def test_needs_an_order_of_the_pair(self, ledger):
        """A payer with no order of the product is refused."""
        with pytest.raises(UnknownOrder):
            ledger.add_account_change(account_change(product_code="CLOUD-DISK"), NOW)
        with pytest.raises(UnknownOrder):
            ledger.add_account_change(account_change(payer_id="p-404"), NOW)
        assert ledger.row_counts()["account_num_change"] == 0

    def test_only_changes_are_appended(self, ledger):
        """A count equal to the latest appends nothing; any other count is appended."""
        steps = [(5, True), (5, False), (6, True), (5, True), (5, False)]
        for minute, (count, appended) in enumerate(steps):
            at = NOW + timedelta(minutes=minute)
            assert (
                ledger.add_account_change(account_change(count=count, changed_at=at), at)
                is appended
            )
        assert ledger.row_counts()["account_num_change"] == 3

    def test_pairs_are_separate(self, ledger):
        """Counts of different (payer, product) pairs do not compare with each other."""
        ledger.add_order(order(order_id="o-2", payer_id="p-2"), NOW)
        assert ledger.add_account_change(account_change(), NOW) is True
        assert ledger.add_account_change(account_change(payer_id="p-2"), NOW) is True

    def test_negative_count(self, ledger):
        """A negative count is refused."""
        with pytest.raises(InvalidArgument):
            ledger.add_account_change(account_change(count=-1), NOW)


class TestAddError:
    def test_keeps_the_record(self, ledger):
        """A refused record is kept, Chinese payload and all."""
        record = ErrorRecord(
            "insertServiceOp",
            "op-9",
            "UNKNOWN_ORDER",
            "order 'x' is unknown",
            "{'备注': '😀'}",
            NOW,
        )
        ledger.add_error(record)
        ledger.add_error(record)
        assert ledger.row_counts()["error_record"] == 2

    def test_an_overlong_key_is_clipped_not_refused(self, ledger):
        """A key too long for the ledger (why it was refused) is still kept."""
        ledger.add_error(
            ErrorRecord("installOrder", "k" * 5000, "INVALID_ARGUMENT", "long", "x" * 100_000, NOW)
        )
        assert ledger.row_counts()["error_record"] == 1
