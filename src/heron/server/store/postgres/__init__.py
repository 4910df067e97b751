"""Shared state on PostgreSQL (scale-out mode): ``PostgresState`` implements
``store.state.StateStore`` for several Heron processes at once."""
