"""Any image the user brings: started on the run network with its labels, never published; the
harness waits on its `healthcheck:` (if any) and otherwise only for it to be running."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides
from harness.kinds.descriptor import Descriptor
from harness.plan.model import ContainerPlan
from harness.spec.models import CustomService


def containers(ctx: Context, name: str, svc: CustomService) -> list[ContainerPlan]:
    out = []
    for inst in ctx.instances(name):
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="custom",
            image=svc.image,
            builtin_image=False,
            ip=ctx.ips[inst],
        )
        out.append(apply_overrides(plan, svc, ctx))
    return out


DESCRIPTOR = Descriptor(image=None)  # the user's image: nothing known about it
