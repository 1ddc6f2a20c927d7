"""The Circular 39 workflow on SQLite and PostgreSQL: roles, scopes, policies, queues, approve, reject."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fleet_small import COMMUNE, NOW, OTHER, PROVINCE, THIRD, context, user

from speakerctl.app import approvals, broadcasts, policy, schedules
from speakerctl.app.access import Role, local_administrator
from speakerctl.app.context import AppContext
from speakerctl.errors import AwaitsApproval, NotAllowed, UsageError
from speakerctl.protocol import Priority
from speakerctl.store import ItemKind, ItemState

OPERATOR = user(Role.OPERATOR, COMMUNE, "lan")
APPROVER = user(Role.APPROVER, COMMUNE, "hung")
PROVINCE_OPERATOR = user(Role.OPERATOR, PROVINCE, "tinh-op")
PROVINCE_APPROVER = user(Role.APPROVER, PROVINCE, "tinh-duyet")


@pytest.fixture
def ctx(tmp_path: Path, db_url: str) -> AppContext:
    """The small fleet with one bulletin (id 1)."""
    ctx = context(tmp_path, db_url)
    ctx.store().bulletins.add(
        "Lịch tiêm phòng", "ab" * 32, "opus", "ogg", 24, 61_000, 183_000, "t.mp3", "x", NOW
    )
    return ctx


async def _broadcast(ctx: AppContext, actor: object, targets: list[str], priority: str = "normal") -> None:
    await broadcasts.broadcast(ctx, 1, targets, priority, actor=actor)  # type: ignore[arg-type]


async def test_an_operator_waits_for_approval_and_nothing_is_lost(ctx: AppContext) -> None:
    with pytest.raises(AwaitsApproval) as held:
        await _broadcast(ctx, OPERATOR, [COMMUNE])
    [item] = approvals.queue(ctx, actor=APPROVER)
    assert held.value.items == (item.id,) and f"item {item.id}" in str(held.value)
    assert (item.zone, item.targets, item.submitted_by, item.from_above) == (COMMUNE, [COMMUNE], "lan", False)
    assert ctx.store().broadcasts.latest() == []
    submit = ctx.store().audit.entries(actor="lan")[0]
    assert (submit.action, submit.subject) == ("submit", f"item {item.id}")


@pytest.mark.parametrize("target", [OTHER, PROVINCE, f"{OTHER}-01"])
async def test_a_commune_operator_is_refused_outside_the_commune(ctx: AppContext, target: str) -> None:
    with pytest.raises(NotAllowed) as refused:
        await _broadcast(ctx, OPERATOR, [target])
    assert not isinstance(refused.value, AwaitsApproval)
    assert ctx.store().approvals.all() == []


async def test_a_viewer_may_not_broadcast_schedule_or_submit(ctx: AppContext) -> None:
    viewer = user(Role.VIEWER, COMMUNE)
    with pytest.raises(NotAllowed, match="may not broadcast"):
        await _broadcast(ctx, viewer, [COMMUNE])
    with pytest.raises(NotAllowed):
        approvals.submit(ctx, 1, [COMMUNE], actor=viewer)
    rule = schedules.build_rule(ctx.settings.timezone, daily="05:00")
    with pytest.raises(NotAllowed):
        schedules.add(ctx, schedules.ScheduleSpec(1, [COMMUNE], rule), actor=viewer)


async def test_an_approver_places_the_item_at_a_time_and_is_recorded(ctx: AppContext) -> None:
    [item] = approvals.submit(ctx, 1, [COMMUNE], actor=OPERATOR)
    with pytest.raises(NotAllowed):  # another commune's approver
        await approvals.approve(ctx, item.id, actor=user(Role.APPROVER, OTHER), at=NOW + timedelta(hours=1))
    with pytest.raises(NotAllowed):  # an operator
        await approvals.approve(ctx, item.id, actor=OPERATOR, at=NOW + timedelta(hours=1))
    done = await approvals.approve(ctx, item.id, actor=APPROVER, at=NOW + timedelta(hours=1))
    assert done.broadcast is None and done.schedule
    assert (done.item.state, done.item.decided_by, done.item.result) == ("approved", "hung", done.schedule)
    made = ctx.book().get(done.schedule)
    assert (made.approved_by, made.targets, made.rule.at) == ("hung", (COMMUNE,), NOW + timedelta(hours=1))
    with pytest.raises(UsageError, match="approved already"):
        approvals.reject(ctx, item.id, "late", actor=APPROVER)
    actions = [(e.actor, e.action) for e in ctx.store().audit.entries()]
    assert (
        ("hung", "approve") in actions
        and ("hung", "schedule_add") in actions
        and ("lan", "submit") in actions
    )


async def test_reject_needs_a_reason_and_keeps_it(ctx: AppContext) -> None:
    [item] = approvals.submit(ctx, 1, [COMMUNE], actor=OPERATOR)
    with pytest.raises(UsageError):
        approvals.reject(ctx, item.id, "  ", actor=APPROVER)
    rejected = approvals.reject(ctx, item.id, "Sai lịch, phát lại thứ Hai", actor=APPROVER)
    assert (rejected.state, rejected.reason, rejected.decided_by) == (
        "rejected",
        "Sai lịch, phát lại thứ Hai",
        "hung",
    )
    assert approvals.queue(ctx, actor=APPROVER) == []
    [kept] = approvals.queue(ctx, actor=OPERATOR, decided=True)
    assert kept.reason == "Sai lịch, phát lại thứ Hai"


async def test_nobody_approves_their_own_item(ctx: AppContext) -> None:
    ctx.store().policies.set(COMMUNE, ["operator", "approver"])
    with pytest.raises(AwaitsApproval) as held:
        await _broadcast(ctx, APPROVER, [COMMUNE])
    with pytest.raises(NotAllowed, match="may not decide"):
        await approvals.approve(ctx, held.value.items[0], actor=APPROVER)


async def test_the_policy_is_inherited_down_the_tree(ctx: AppContext) -> None:
    assert approvals.policy_of(ctx, COMMUNE).approval_for == ["operator"]
    approvals.set_policy(ctx, PROVINCE, set(), actor=local_administrator())
    shown = approvals.policy_of(ctx, COMMUNE)
    assert (shown.approval_for, shown.set_on) == ([], PROVINCE)
    asked = policy.Request(ItemKind.BROADCAST, 1, (COMMUNE,), Priority.NORMAL)
    assert policy.route(ctx.store(), OPERATOR, asked, NOW).direct
    approvals.set_policy(ctx, COMMUNE, {"operator"}, actor=user(Role.ADMINISTRATOR, COMMUNE))
    assert not policy.route(ctx.store(), OPERATOR, asked, NOW).direct
    with pytest.raises(NotAllowed):
        approvals.set_policy(ctx, OTHER, set(), actor=user(Role.ADMINISTRATOR, COMMUNE))
    with pytest.raises(UsageError):
        approvals.parse_roles("viewer")


async def test_a_normal_item_from_the_province_lands_in_each_commune(ctx: AppContext) -> None:
    with pytest.raises(AwaitsApproval) as held:
        await _broadcast(ctx, PROVINCE_APPROVER, [PROVINCE])  # approvers need no approval, communes decide
    items = ctx.store().approvals.all()
    assert len(held.value.items) == 3
    assert {(i.zone_id, i.targets, i.from_above) for i in items} == {
        (z, (z,), True) for z in (COMMUNE, OTHER, THIRD)
    }
    [mine] = approvals.queue(ctx, actor=APPROVER)
    assert mine.zone == COMMUNE
    done = await approvals.approve(ctx, mine.id, actor=APPROVER, at=NOW + timedelta(hours=3))
    assert ctx.book().get(done.schedule or "").targets == (COMMUNE,)
    assert len(approvals.queue(ctx, actor=PROVINCE_APPROVER)) == 2


async def test_a_priority_item_from_above_is_ordered_before_the_communes_own(ctx: AppContext) -> None:
    approvals.submit(ctx, 1, [COMMUNE], actor=OPERATOR)
    with pytest.raises(AwaitsApproval):
        await _broadcast(ctx, PROVINCE_APPROVER, [COMMUNE, OTHER], "priority")
    queue = approvals.queue(ctx, actor=APPROVER)
    assert [(i.priority, i.submitted_by) for i in queue] == [("priority", "tinh-duyet"), ("normal", "lan")]
    done = await approvals.approve(ctx, queue[0].id, actor=APPROVER, at=NOW + timedelta(minutes=30))
    assert ctx.book().get(done.schedule or "").priority is Priority.PRIORITY


async def test_a_province_operator_is_approved_in_the_province_then_each_commune_decides(
    ctx: AppContext,
) -> None:
    with pytest.raises(AwaitsApproval) as held:
        await _broadcast(ctx, PROVINCE_OPERATOR, [PROVINCE], "priority")
    [first] = approvals.queue(ctx, actor=PROVINCE_APPROVER)
    assert (first.id, first.zone, first.from_above) == (held.value.items[0], PROVINCE, False)
    assert approvals.queue(ctx, actor=APPROVER) == []
    with pytest.raises(NotAllowed):  # a commune approver does not decide for the province
        await approvals.approve(ctx, first.id, actor=APPROVER)
    done = await approvals.approve(ctx, first.id, actor=PROVINCE_APPROVER)
    assert done.broadcast is None and len(done.forwarded) == 3
    [mine] = approvals.queue(ctx, actor=APPROVER)
    assert (mine.zone, mine.from_above, mine.submitted_by, mine.priority) == (
        COMMUNE,
        True,
        "tinh-op",
        "priority",
    )
    assert ctx.store().broadcasts.latest() == []


async def test_an_emergency_from_above_does_not_wait(ctx: AppContext) -> None:
    asked = policy.Request(ItemKind.BROADCAST, 1, (PROVINCE,), Priority.EMERGENCY)
    routing = policy.route(ctx.store(), PROVINCE_OPERATOR, asked, NOW)
    assert routing.direct
    assert {(n.zone_id, n.state) for n in routing.notes} == {
        (z, ItemState.AIRED) for z in (COMMUNE, OTHER, THIRD)
    }


async def test_a_schedule_waits_then_is_installed_as_approved(ctx: AppContext) -> None:
    rule = schedules.build_rule(ctx.settings.timezone, daily="05:00,17:00")
    with pytest.raises(AwaitsApproval) as held:
        schedules.add(ctx, schedules.ScheduleSpec(1, [COMMUNE], rule, name="Sáng chiều"), actor=OPERATOR)
    assert ctx.book().all() == []
    with pytest.raises(UsageError):
        await approvals.approve(ctx, held.value.items[0], actor=APPROVER, at=NOW + timedelta(hours=1))
    done = await approvals.approve(ctx, held.value.items[0], actor=APPROVER)
    made = ctx.book().get(done.schedule or "")
    assert (made.name, made.rule, made.approved_by) == ("Sáng chiều", rule, "hung")
    with pytest.raises(NotAllowed):
        schedules.remove(ctx, made.id, actor=user(Role.OPERATOR, OTHER))
    schedules.remove(ctx, made.id, actor=APPROVER)
    assert ctx.store().audit.entries(actor="hung")[0].action == "schedule_remove"
