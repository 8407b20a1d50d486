"""What the outbound sync registers in the hooks of the apps below (called from `WecomConfig.ready`)."""

from __future__ import annotations


def connect() -> None:
    from channels.hooks import (
        register_code_deleted_handler,
        register_code_saved_handler,
        register_receivers_changed_handler,
    )
    from customers.hooks import (
        register_transfer_column,
        register_transfer_started_handler,
        register_unassigned_source,
    )
    from tags.hooks import register_taxonomy_changed_handler

    from . import admin_status, contact_ways, pull, sync_tasks, taxonomy, transfers  # noqa: F401 - admin, tasks, job handler

    register_taxonomy_changed_handler(taxonomy.on_taxonomy_changed)
    register_transfer_started_handler(transfers.on_transfer_started)
    register_transfer_column(transfers.transfer_column)
    register_code_saved_handler(contact_ways.on_code_saved)
    register_receivers_changed_handler(contact_ways.on_receivers_changed)
    register_code_deleted_handler(contact_ways.on_code_deleted)
    register_unassigned_source(transfers.unassigned_counts_source)
