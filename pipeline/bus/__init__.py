"""Message bus: one interface (`base`), two transports (`local`, `kafka`)."""

from __future__ import annotations

from pipeline.bus.base import Bus, BusError, Consumer, Producer, Record, TopicPartition
from pipeline.settings import Settings

__all__ = ["Bus", "BusError", "Consumer", "Producer", "Record", "TopicPartition", "open_bus"]


def open_bus(settings: Settings) -> Bus:
    """The transport the settings name (`YUQING_BUS`)."""
    if settings.bus == "kafka":
        from pipeline.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers,
            client_id=settings.kafka_client_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        )
    from pipeline.bus.local import LocalBus

    return LocalBus(
        settings.data_dir / "bus.sqlite3",
        retention_hours=settings.local_bus_retention_hours,
    )
