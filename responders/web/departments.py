"""`GET /api/departments`: the catalog (from `config/departments.yaml`), for everyone
logged in: transfer and reassignment forms need the other departments' names."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException

from pipeline.storage.models import Department
from responders.web.auth import DB, Caller
from responders.web.schemas import DepartmentOut

router = APIRouter(prefix="/api/departments", tags=["departments"])


@router.get("", response_model=list[DepartmentOut])
def list_departments(session: DB, _caller: Caller) -> list[DepartmentOut]:
    rows = session.scalars(sa.select(Department).order_by(Department.id))
    return [DepartmentOut.model_validate(d) for d in rows]


@router.get("/{department_id}", response_model=DepartmentOut)
def get_department(department_id: str, session: DB, _caller: Caller) -> DepartmentOut:
    row = session.get(Department, department_id)
    if row is None:
        raise HTTPException(404, "department not found")
    return DepartmentOut.model_validate(row)
