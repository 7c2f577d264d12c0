"""Building a device's digital twin from its registry record."""

from __future__ import annotations

from datetime import date

from ..domain.registry import Device
from ..domain.twin.physics import DeviceTwin
from ..domain.twin.site import site_constants


def twin_of(device: Device) -> DeviceTwin:
    turbidity = device.linke_turbidity
    altitude = device.altitude_m
    if not turbidity or altitude is None:  # registered before site constants were stored
        site = site_constants(float(device.latitude), float(device.longitude))
        turbidity, altitude = tuple(site.linke_turbidity), site.altitude_m
    return DeviceTwin(
        device_id=device.device_id,
        capacity_w=float(device.capacity_w),
        latitude=float(device.latitude),
        longitude=float(device.longitude),
        commissioning_date=date.fromisoformat(str(device.commissioning_date)),
        linke_turbidity=tuple(float(t) for t in turbidity),
        tilt_deg=None if device.tilt_deg is None else float(device.tilt_deg),
        azimuth_deg=None if device.azimuth_deg is None else float(device.azimuth_deg),
        altitude_m=float(altitude),
        battery_wh=None if device.battery_wh is None else float(device.battery_wh),
    )
