"""Quota bodies: Octavia's per-project limits, in both of its spellings.

Octavia answers ``loadbalancer`` and ``healthmonitor`` and, with the same values, the
spellings it deprecated in Rocky, ``load_balancer`` and ``health_monitor``, which
openstacksdk and ``openstack loadbalancer quota`` still send and read; it accepts either.
"""

from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, Strict

from api_service.schemas.fields import INT32_MAX, INTEGRAL, RequestBody

Limit = Annotated[int, Strict(), Field(ge=-1, le=INT32_MAX), INTEGRAL]
"""Objects a project may have; -1 is unlimited."""

OLD_SPELLINGS = {"load_balancer": "loadbalancer", "health_monitor": "healthmonitor"}
"""Octavia's deprecated name of a limit → its name."""

_SAME_AS = "The same limit as {} (Octavia's deprecated spelling)."


class QuotaFields(RequestBody):
    """The limits to set; a limit sent as null goes back to the default, one left out stays.
    A limit may be named in either spelling; sent in both, ``loadbalancer`` or
    ``healthmonitor`` wins."""

    loadbalancer: Limit | None = None
    load_balancer: Limit | None = Field(default=None, description=_SAME_AS.format("loadbalancer"))
    listener: Limit | None = None
    pool: Limit | None = None
    member: Limit | None = None
    healthmonitor: Limit | None = None
    health_monitor: Limit | None = Field(default=None, description=_SAME_AS.format("healthmonitor"))
    l7policy: Limit | None = None
    l7rule: Limit | None = None

    def limits(self) -> dict[str, int | None]:
        """The limits sent, by their names (``loadbalancer``, not ``load_balancer``)."""
        sent = self.model_dump(exclude_unset=True)
        limits = {OLD_SPELLINGS[old]: sent.pop(old) for old in OLD_SPELLINGS if old in sent}
        return {**limits, **sent}


class QuotaUpdateBody(RequestBody):
    quota: QuotaFields


class QuotaOut(BaseModel):
    loadbalancer: int
    load_balancer: int = Field(description=_SAME_AS.format("loadbalancer"))
    listener: int
    pool: int
    member: int
    healthmonitor: int
    health_monitor: int = Field(description=_SAME_AS.format("healthmonitor"))
    l7policy: int
    l7rule: int

    @classmethod
    def of(cls, limits: dict[str, int], **extra: Any) -> Self:
        """``limits`` by their names, answered in both spellings."""
        old = {spelling: limits[name] for spelling, name in OLD_SPELLINGS.items()}
        return cls(**limits, **old, **extra)


class ProjectQuotaOut(QuotaOut):
    project_id: str


class QuotaBody(BaseModel):
    quota: QuotaOut


class QuotaList(BaseModel):
    quotas: list[ProjectQuotaOut]
