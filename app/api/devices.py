"""The driver's signed-in devices: ``DELETE /api/v1/auth/token`` (sign this device out), the list, and signing out
another device (a lost phone). The portal's profile page lists them too, with "sign out everywhere"."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from app.accounts import api_tokens
from app.accounts.api_tokens import RevokedReason
from app.api.auth import current_device, current_driver
from app.api.blueprints import ID, ApiBlueprint
from app.api.pagination import PageArgs, page_of, page_schema, time_key
from app.api.problems import ApiProblem
from app.api.tokens import DeviceOut, present_device
from app.extensions import db

blp = ApiBlueprint(
    "api_devices", __name__, tag="Devices", url_prefix="/api/v1", description="The driver's signed-in devices"
)

DevicePage = page_schema(DeviceOut, "DevicePage")


@blp.route("/auth/token", methods=["DELETE"])
@blp.response(204)
def sign_out() -> None:
    """Sign this device out: its access and refresh tokens stop working at once."""
    api_tokens.revoke_device(current_device(), RevokedReason.SIGNED_OUT)
    db.session.commit()


@blp.route("/me/devices", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, DevicePage)
def device_list(args: dict[str, Any]) -> dict[str, Any]:
    """The devices signed in to this account, most recently used first."""
    devices = api_tokens.live_devices_of(current_driver().id)
    current_id = current_device().id
    page = page_of(devices, lambda device: (time_key(device.last_used_at), device.id), "devices", args)
    return page.answer("devices", lambda device: present_device(device, current_id))


@blp.route(f"/me/devices/<{ID}:device_id>", methods=["DELETE"])
@blp.response(204)
def sign_out_device(device_id: int) -> None:
    """Sign out one of the driver's devices (this one included); another driver's is a 404."""
    device = api_tokens.device_of_user(current_driver().id, device_id)
    if device is None:
        raise ApiProblem(404, "device_not_found", _l("This device is not signed in to your account."))
    api_tokens.revoke_device(device, RevokedReason.DEVICE_SIGNED_OUT)
    db.session.commit()
